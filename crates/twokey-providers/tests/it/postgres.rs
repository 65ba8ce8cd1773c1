//! The postgres provider against the real PostgreSQL in `TWOKEY_TEST_PG`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, a superuser).
//!
//! Every test uses role names with a random suffix, so tests run in parallel
//! and repeatedly, and removes what it created.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::{Connection, PgConnection};
use twokey_providers::postgres::PostgresProvider;
use twokey_providers::{GrantSpec, Presence, Provider, ProviderContext, Registry};

fn admin_url() -> String {
    std::env::var("TWOKEY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn suffix() -> String {
    let n: u32 = rand::rngs::OsRng.gen();
    format!("{n:08x}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The admin URL with another user and no password.
fn url_as(user: &str) -> String {
    let mut u = url::Url::parse(&admin_url()).unwrap();
    u.set_username(user).unwrap();
    u.set_password(None).unwrap();
    u.to_string()
}

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL at TWOKEY_TEST_PG")
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn spec(request_id: &str, requester_name: &str, ends_at_ms: i64) -> GrantSpec {
    GrantSpec {
        request_id: request_id.into(),
        entitlement: "prod-db".into(),
        requester: format!("twokey|{requester_name}"),
        requester_name: requester_name.into(),
        starts_at_ms: now_ms(),
        ends_at_ms,
        overlapping_active: vec![],
    }
}

fn provider(target: &str) -> Arc<dyn Provider> {
    let t: toml::Table = toml::from_str(target).unwrap();
    Registry::with_builtin()
        .build("postgres", &t, &ProviderContext::default())
        .unwrap()
}

async fn session_alive(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(conn)
        .await
        .is_ok()
}

#[tokio::test]
async fn login_role_works_during_the_grant_and_is_gone_with_its_sessions_after_revoke() {
    let sfx = suffix();
    let reader = format!("tkt_reader_{sfx}");
    let mut admin = admin().await;
    exec(&mut admin, &format!("CREATE ROLE \"{reader}\" NOLOGIN")).await;

    let p = provider(&format!(
        "url = {:?}\nmode = \"login\"\nroles = [\"{reader}\"]",
        admin_url()
    ));
    let ends_at = now_ms() + 3_600_000;
    let s = spec(&format!("{sfx}-login"), "alice", ends_at);
    let role = PostgresProvider::login_role_name(&s.request_id);

    // Grant: the secret is a working connection URL for the new role.
    let out = p.grant(&s).await.unwrap();
    let secret = out.secret.expect("a connection URL");
    assert!(
        secret.starts_with(&format!("postgres://{role}:")),
        "{secret}"
    );
    assert!(out.detail.contains(&role));
    assert_eq!(p.check(&s).await.unwrap(), Presence::Present);
    let mut kept = PgConnection::connect(&secret).await.unwrap();
    let (who, in_reader): (String, bool) = sqlx::query_as(&format!(
        "SELECT current_user::text, pg_has_role('{reader}', 'MEMBER')"
    ))
    .fetch_one(&mut kept)
    .await
    .unwrap();
    assert_eq!((who.as_str(), in_reader), (role.as_str(), true));

    // The target enforces the end by itself: VALID UNTIL is the grant's end,
    // and the password is stored only as a SCRAM verifier.
    let (until_ms, stored): (i64, String) = sqlx::query_as(
        "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::bigint, rolpassword \
           FROM pg_authid WHERE rolname = $1",
    )
    .bind(&role)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(until_ms, ends_at);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"));

    // Granting again (a retry) resets the password and still works.
    let again = p.grant(&s).await.unwrap().secret.unwrap();
    assert_ne!(again, secret);
    PgConnection::connect(&again)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    assert!(session_alive(&mut kept).await);

    // Revoke: new logins fail and the open session is gone.
    p.revoke(&s).await.unwrap();
    assert!(
        !session_alive(&mut kept).await,
        "a session outlived the revoke"
    );
    assert!(
        PgConnection::connect(&again).await.is_err(),
        "login works after revoke"
    );
    assert_eq!(p.check(&s).await.unwrap(), Presence::Absent);
    p.revoke(&s).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0);

    exec(&mut admin, &format!("DROP ROLE \"{reader}\"")).await;
}

#[tokio::test]
async fn an_expired_role_with_an_open_session_is_still_present_until_revoked() {
    let sfx = suffix();
    let p = provider(&format!("url = {:?}\nmode = \"login\"", admin_url()));
    // Ended a minute ago: VALID UNTIL only stops new password logins, so the
    // session opened here (trust auth) is exactly the case revoke must end.
    let s = spec(&format!("{sfx}-expired"), "alice", now_ms() - 60_000);
    let secret = p.grant(&s).await.unwrap().secret.unwrap();
    let mut session = PgConnection::connect(&secret).await.unwrap();
    assert_eq!(p.check(&s).await.unwrap(), Presence::Present);
    p.revoke(&s).await.unwrap();
    assert!(!session_alive(&mut session).await);
    assert_eq!(p.check(&s).await.unwrap(), Presence::Absent);
}

#[tokio::test]
async fn revoke_drops_a_login_role_that_owns_objects() {
    let sfx = suffix();
    let (writer, schema) = (format!("tkt_writer_{sfx}"), format!("tkt_s_{sfx}"));
    let mut admin = admin().await;
    exec(
        &mut admin,
        &format!(
            "CREATE ROLE \"{writer}\" NOLOGIN; CREATE SCHEMA \"{schema}\"; \
             GRANT USAGE, CREATE ON SCHEMA \"{schema}\" TO \"{writer}\";"
        ),
    )
    .await;
    let p = provider(&format!(
        "url = {:?}\nmode = \"login\"\nroles = [\"{writer}\"]",
        admin_url()
    ));
    let s = spec(&format!("{sfx}-owner"), "alice", now_ms() + 600_000);
    let secret = p.grant(&s).await.unwrap().secret.unwrap();
    let mut session = PgConnection::connect(&secret).await.unwrap();
    exec(
        &mut session,
        &format!("CREATE TABLE \"{schema}\".made_during_grant (x int)"),
    )
    .await;
    p.revoke(&s).await.unwrap();
    assert_eq!(p.check(&s).await.unwrap(), Presence::Absent);
    // The table survives, now owned by the admin role.
    let owner: String = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE schemaname = $1 AND tablename = 'made_during_grant'",
    )
    .bind(&schema)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_ne!(owner, PostgresProvider::login_role_name(&s.request_id));
    exec(
        &mut admin,
        &format!("DROP SCHEMA \"{schema}\" CASCADE; DROP ROLE \"{writer}\";"),
    )
    .await;
}

#[tokio::test]
async fn membership_stays_while_an_overlapping_grant_is_active() {
    let sfx = suffix();
    let (user, role) = (format!("tkt_alice_{sfx}"), format!("tkt_rw_{sfx}"));
    let mut admin = admin().await;
    exec(
        &mut admin,
        &format!("CREATE ROLE \"{user}\" LOGIN; CREATE ROLE \"{role}\" NOLOGIN;"),
    )
    .await;
    let p = provider(&format!(
        "url = {:?}\nmode = \"membership\"\nroles = [\"{role}\"]\nusers = {{ alice = \"{user}\" }}",
        admin_url()
    ));
    let first = spec(&format!("{sfx}-a"), "alice", now_ms() + 600_000);
    let second = spec(&format!("{sfx}-b"), "alice", now_ms() + 1_200_000);
    assert_eq!(p.check(&first).await.unwrap(), Presence::Absent);
    p.grant(&first).await.unwrap();
    p.grant(&second).await.unwrap();
    p.grant(&second).await.unwrap();
    assert_eq!(p.check(&first).await.unwrap(), Presence::Present);

    let mut session = PgConnection::connect(&url_as(&user)).await.unwrap();
    exec(&mut session, &format!("SET ROLE \"{role}\"")).await;

    // The first grant ends while the second is active: nothing changes.
    let mut ending = first.clone();
    ending.overlapping_active = vec![second.request_id.clone()];
    p.revoke(&ending).await.unwrap();
    assert_eq!(p.check(&second).await.unwrap(), Presence::Present);
    assert!(
        session_alive(&mut session).await,
        "the overlapping grant's session was cut"
    );

    // The last grant ends: membership and sessions go.
    p.revoke(&second).await.unwrap();
    assert_eq!(p.check(&second).await.unwrap(), Presence::Absent);
    assert!(
        !session_alive(&mut session).await,
        "a session outlived the revoke"
    );
    p.revoke(&second).await.unwrap();

    exec(
        &mut admin,
        &format!("DROP ROLE \"{user}\"; DROP ROLE \"{role}\";"),
    )
    .await;
}

#[tokio::test]
async fn membership_for_an_unknown_user_is_a_permanent_error() {
    let sfx = suffix();
    let role = format!("tkt_ro_{sfx}");
    let mut admin = admin().await;
    exec(&mut admin, &format!("CREATE ROLE \"{role}\" NOLOGIN")).await;
    let p = provider(&format!(
        "url = {:?}\nmode = \"membership\"\nroles = [\"{role}\"]",
        admin_url()
    ));
    let s = spec(
        &format!("{sfx}-x"),
        &format!("nobody_{sfx}"),
        now_ms() + 60_000,
    );
    let err = p.grant(&s).await.unwrap_err();
    assert!(!err.retryable, "{}", err.message);
    assert!(err.message.contains("users"), "{}", err.message);
    // Revoking for a user that does not exist has nothing to do.
    p.revoke(&s).await.unwrap();
    exec(&mut admin, &format!("DROP ROLE \"{role}\"")).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_error() {
    let p = provider(
        "url = \"postgres://postgres@127.0.0.1:1/postgres\"\nmode = \"login\"\nconnect_timeout = \"500ms\"",
    );
    let err = p.check(&spec("r-1", "alice", now_ms())).await.unwrap_err();
    assert!(err.retryable, "{}", err.message);
}
