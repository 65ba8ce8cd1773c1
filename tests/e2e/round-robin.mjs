// A small round-robin HTTP proxy: each request (not each connection, since
// browsers keep connections alive) goes to the next replica in turn, so a
// browser's login, its callback and its security-key ceremony land on
// different `twokey serve` processes. Counts what each replica answered.
import http from 'node:http';

export function startRoundRobin({ port, targets }) {
  let next = 0;
  const hits = targets.map(() => 0);
  const agent = new http.Agent({ keepAlive: false });
  const server = http.createServer((req, res) => {
    const i = next;
    next = (next + 1) % targets.length;
    hits[i] += 1;
    const up = http.request(
      { host: '127.0.0.1', port: targets[i], method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        res.writeHead(r.statusCode, r.rawHeaders);
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`round-robin: replica ${targets[i]} failed: ${e.message}`);
    });
    req.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({
        hits,
        stop: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }),
      }),
    );
    server.keepAliveTimeout = 1000;
  });
}
