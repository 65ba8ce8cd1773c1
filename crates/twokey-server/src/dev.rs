//! `twokey serve --dev`: a complete local instance with a demo policy, demo
//! identities and tokens written to the data dir.

use std::collections::BTreeMap;
use std::path::Path;

use twokey_core::Policy;

/// The demo policy. `pg` adds a PostgreSQL entitlement at that admin URL.
pub fn demo_policy(pg: Option<&str>) -> String {
    let mut s = String::from(
        "# twokey demo policy (twokey serve --dev).\n\
         # alice requests; bob and carol approve; bob and carol are the policy admins.\n\n",
    );
    s.push_str(twokey_core::policy::DEMO_PEOPLE);
    s.push_str(
        r#"
[[entitlement]]
name = "demo"
description = "A file under the data dir's demo-grants/ exists while the grant is active"
provider = "exec"
requester_identities = ["alice"]
default_duration = "15m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
break_glass = true
approval = { count = 1, from = ["approvers"] }

[entitlement.target]
grant = ["sh", "-c", "mkdir -p \"$TWOKEY_DATA_DIR/demo-grants\" && echo \"$TWOKEY_REQUESTER_NAME until $TWOKEY_ENDS_AT\" > \"$TWOKEY_DATA_DIR/demo-grants/$TWOKEY_REQUEST_ID\""]
revoke = ["sh", "-c", "rm -f \"$TWOKEY_DATA_DIR/demo-grants/$TWOKEY_REQUEST_ID\""]
check = ["sh", "-c", "test -e \"$TWOKEY_DATA_DIR/demo-grants/$TWOKEY_REQUEST_ID\""]
timeout = "10s"
"#,
    );
    if let Some(url) = pg {
        s.push_str(&format!(
            r#"
[[entitlement]]
name = "demo-db"
description = "A temporary PostgreSQL login that stops working when the grant ends"
provider = "postgres"
requester_identities = ["alice"]
default_duration = "15m"
max_duration = "1h"
reason_required = true
approval = {{ count = 1, from = ["approvers"] }}

[entitlement.target]
url = "{url}"
mode = "login"
roles = []
"#
        ));
    }
    s
}

/// The demo policy, validated.
pub fn demo(pg: Option<&str>) -> Policy {
    let text = demo_policy(pg);
    match Policy::parse(&text, "demo policy") {
        Ok(p) => p,
        // The demo policy is part of the program; tests keep it valid.
        Err(e) => panic!("built-in demo policy is invalid: {e}"),
    }
}

/// Reads the demo tokens of a data dir, if written before.
pub fn read_tokens(dir: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("dev-tokens.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `DIR/dev-tokens.json` (mode 0600).
pub fn write_tokens(dir: &Path, tokens: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("dev-tokens.json");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(
        serde_json::to_string_pretty(tokens)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    f.write_all(b"\n")
}

/// The loud banner.
pub fn banner(listen: &str, dir: &Path, pg: bool) -> String {
    let line = "!".repeat(72);
    format!(
        "{line}\n!!  twokey DEV MODE: demo identities, demo tokens, NOT FOR PRODUCTION\n!!  listening on http://{listen} (loopback only)\n!!  data dir {dir}, tokens in {dir}/dev-tokens.json\n!!  entitlements: demo (exec){}\n{line}",
        if pg { ", demo-db (postgres)" } else { "" },
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_policy_is_valid_with_and_without_postgres() {
        assert!(super::demo(None).entitlement("demo").is_some());
        assert!(
            super::demo(Some("postgres://postgres@127.0.0.1:5432/postgres"))
                .entitlement("demo-db")
                .is_some()
        );
    }
}
