//! `twokey guard activity` on a log real PostgreSQL wrote: a throwaway
//! cluster (Debian's PostgreSQL binaries, `initdb` as the `postgres` user)
//! with `log_destination = 'csvlog,jsonlog'`, `log_connections`,
//! `log_statement = 'all'` and `log_timezone = 'UTC'`; a grant's login role
//! (`tk_<id>`, as the provider names it) and another role connect and run
//! statements, one failing. Both log files attribute exactly the grant
//! role's lines to the grant, with the same event ids, and nothing of the
//! other role.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use twokey_guard::activity::{postgres_login_role, run_activity, ActivityArgs};

fn pg_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs a PostgreSQL binary as the `postgres` user when we are root
/// (initdb refuses root).
fn as_postgres(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    // The server `pg_ctl start` leaves running keeps whatever stdout and
    // stderr it was given: a file, not our pipes, or `output()` never ends.
    let log = std::env::temp_dir().join(format!("twokey-pg-{}.log", std::process::id()));
    let f = std::fs::File::create(&log).expect("pg log file");
    let status = c
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(f.try_clone().expect("clone"))
        .stderr(f)
        .status()
        .expect("run a PostgreSQL binary");
    let text = std::fs::read(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    std::process::Output {
        status,
        stdout: text,
        stderr: Vec::new(),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn psql(port: u16, user: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=0", "-X", "-q", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql")
}

struct Cluster {
    bin: PathBuf,
    data: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let d = self.data.display().to_string();
        as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &d, "-m", "immediate", "stop"],
        );
    }
}

fn records(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an NDJSON record"))
        .collect()
}

#[test]
fn a_real_postgresql_log_is_attributed_to_the_grant_whose_role_wrote_it() {
    let Some(bin) = pg_bin() else {
        assert!(
            std::env::var("CI").is_err(),
            "PostgreSQL's binaries (initdb) are missing under /usr/lib/postgresql"
        );
        eprintln!("skipped: no initdb under /usr/lib/postgresql");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The postgres user writes the cluster and its logs here.
    Command::new("chmod")
        .args(["0777"])
        .arg(dir.path())
        .status()
        .expect("chmod");
    let data = dir.path().join("data");
    let logs = dir.path().join("log");
    let d = data.display().to_string();
    let o = as_postgres(
        &bin.join("initdb"),
        &["-D", &d, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
    );
    assert!(
        o.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let cluster = Cluster {
        bin: bin.clone(),
        data: data.clone(),
    };
    let port = free_port();
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} \
         -c logging_collector=on -c log_destination=csvlog,jsonlog -c log_directory={logs} \
         -c log_connections=on -c log_disconnections=on -c log_statement=all -c log_timezone=UTC",
        sock = dir.path().display(),
        logs = logs.display()
    );
    let o = as_postgres(
        &bin.join("pg_ctl"),
        &["-D", &d, "-o", &opts, "-w", "-t", "60", "start"],
    );
    assert!(
        o.status.success(),
        "pg_ctl start: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    let request_id = "req_01JTEST.pg";
    let role = postgres_login_role(request_id);
    let start_ms = now_ms();
    let o = psql(
        port,
        "postgres",
        &format!("CREATE ROLE {role} LOGIN; CREATE ROLE mallory LOGIN;"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    psql(port, &role, "SELECT 1; SELECT * FROM no_such_table;");
    psql(port, "mallory", "SELECT 2;");
    let end_ms = now_ms();
    // Stop cleanly so the collector has written every line.
    let o = as_postgres(&bin.join("pg_ctl"), &["-D", &d, "-m", "fast", "-w", "stop"]);
    assert!(
        o.status.success(),
        "pg_ctl stop: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    drop(cluster);

    let mut csv = Vec::new();
    let mut jsonl = Vec::new();
    for e in std::fs::read_dir(&logs).expect("log dir").flatten() {
        let p = e.path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("csv") => csv.push(p),
            Some("json") => jsonl.push(p),
            _ => {}
        }
    }
    assert!(
        !csv.is_empty() && !jsonl.is_empty(),
        "no csvlog/jsonlog in {}",
        logs.display()
    );

    let grants = dir.path().join("grants.json");
    std::fs::write(
        &grants,
        json!({
            "requests": [{
                "id": request_id, "entitlement": "db",
                "requester": {"issuer": "twokey", "subject": "alice"}, "requester_name": "alice",
                "activated_at": start_ms - 60_000, "ends_at": end_ms + 3_600_000
            }],
            "policy": {"hash": "h", "entitlements": {
                "db": {"provider": "postgres", "target": {"mode": "login"}}
            }}
        })
        .to_string(),
    )
    .expect("grants file");
    let run = |logs: Vec<PathBuf>| {
        let args = ActivityArgs {
            server: "http://127.0.0.1:9".into(),
            token: None,
            grants: Some(grants.clone()),
            postgres_logs: logs,
            flow_logs: vec![],
            submit: false,
            paths: vec![],
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_activity(&args, &mut out, &mut err).expect("guard activity");
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        records(&out)
    };
    let from_csv = run(csv);
    let from_json = run(jsonl);

    for r in from_csv.iter().chain(&from_json) {
        assert_eq!(r["request_id"], request_id, "{r}");
        assert_eq!(r["principal"], role.as_str(), "{r}");
        assert_eq!(r["source"], "postgres");
        assert_eq!(r["location"], "postgres");
        let t = r["event_time"].as_i64().expect("time");
        assert!(
            t >= start_ms - 5_000 && t <= end_ms + 5_000,
            "time {t} outside the run: {r}"
        );
    }
    let actions: Vec<&str> = from_csv
        .iter()
        .map(|r| r["action"].as_str().unwrap_or(""))
        .collect();
    for want in [
        "connection authorized",
        "statement SELECT",
        "error SELECT",
        "disconnection",
    ] {
        assert!(actions.contains(&want), "no {want:?} in {actions:?}");
    }
    let failed: Vec<&Value> = from_csv.iter().filter(|r| r["outcome"] != "").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "42P01");
    // Both formats: the same lines, the same ids.
    let ids = |v: &[Value]| {
        let mut i: Vec<String> = v
            .iter()
            .map(|r| r["event_id"].as_str().unwrap_or("").to_string())
            .collect();
        i.sort();
        i
    };
    assert_eq!(ids(&from_csv), ids(&from_json));
    // One session of the grant's role: connect, the statement (psql -c
    // sends both as one), its error, disconnect; mallory's session is not here.
    assert_eq!(
        actions,
        [
            "connection authorized",
            "statement SELECT",
            "error SELECT",
            "disconnection"
        ]
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
