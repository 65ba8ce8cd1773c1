// A real OpenID Connect provider for the e2e tests: npm `oidc-provider` (a
// certified OP library) on loopback, with one static confidential client and
// the test accounts alice, bob and carol (with a `groups` claim).
//
// Standalone: node oidc.mjs [port] [redirect_uri]
import Provider from 'oidc-provider';

export const ACCOUNTS = {
  alice: { groups: ['eng'], email: 'alice@example.com' },
  bob: { groups: ['approvers'], email: 'bob@example.com' },
  carol: { groups: ['approvers', 'admins'], email: 'carol@example.com' },
};

export const CLIENT_ID = 'twokey';
export const CLIENT_SECRET = 'twokey-e2e-secret-0123456789abcdef';

export async function startProvider({ port = 0, redirectUris }) {
  const http = await import('node:http');
  // Find a port first: the issuer URL must contain it.
  if (!port) {
    port = await new Promise((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
  }
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    pkce: { required: () => true, methods: ['S256'] },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['e2e-cookie-key-not-secret'] },
    async findAccount(_ctx, id) {
      const acct = ACCOUNTS[id];
      if (!acct) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, name: id, email: acct.email, groups: acct.groups };
        },
      };
    },
  });
  // Keep the test output readable.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider error', err));
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    issuer,
    provider,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] || 9090);
  const redirect = process.argv[3] || 'http://127.0.0.1:8080/ui/callback';
  const p = await startProvider({ port, redirectUris: [redirect] });
  console.log(`oidc-provider at ${p.issuer} (client ${CLIENT_ID} / ${CLIENT_SECRET}; accounts ${Object.keys(ACCOUNTS).join(', ')})`);
}
