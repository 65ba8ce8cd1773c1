//! `twokey custody ...`: the client side of split custody. Everything that
//! reads a secret or a share happens here, on the person's own machine; the
//! server only ever sees sealed envelopes. The crypto and the binding checks
//! are `twokey_custody`'s; this module is the glue between them and the API.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};
use twokey_custody::envelope::{self, ReleaseExpectation};
use twokey_custody::{
    shamir, CustodianIdentity, OneTimeKey, ReleaseContext, RootSecret, ShareContext,
};

use crate::client::Client;

/// `twokey custody` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum CustodyCmd {
    /// Create a custodian's age identity file (mode 0600) and print its
    /// public recipient for the policy.
    Keygen {
        /// Where to write the identity.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the secrets under custody: generation, needs rotation.
    Secrets,
    /// Split a secret (read from stdin, or a prompt) between its custodians
    /// and upload only the sealed shares.
    Seal {
        /// Secret id from the policy.
        #[arg(long)]
        secret: Option<String>,
        /// Account id (with --kind, instead of --secret).
        #[arg(long)]
        account: Option<String>,
        /// password, mfa_recovery, totp_seed or console_password.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Request a custody entitlement: creates the one-time key the
    /// custodians release to, kept only on this machine.
    Request {
        /// Entitlement name (provider = "custody").
        entitlement: String,
        /// How long the release window stays open.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Ticket id.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// As a custodian: decrypt your share locally and re-seal it to the
    /// requester's one-time key.
    Release {
        /// Request id.
        id: String,
        /// Your age identity file.
        #[arg(long)]
        identity: PathBuf,
    },
    /// As the requester: combine the released shares and print the secret.
    Open {
        /// Request id.
        id: String,
    },
    /// Release progress of a request (k of M).
    Status {
        /// Request id.
        id: String,
    },
}

/// Where one-time keys are kept: `TWOKEY_CUSTODY_DIR`, else
/// `$XDG_CONFIG_HOME/twokey/custody`, else `~/.config/twokey/custody`.
fn key_dir() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("TWOKEY_CUSTODY_DIR") {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|b| b.join("twokey").join("custody"))
        .ok_or_else(|| {
            anyhow!("no place for one-time keys: set HOME, XDG_CONFIG_HOME or TWOKEY_CUSTODY_DIR")
        })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn unb64(what: &str, s: &str) -> anyhow::Result<Vec<u8>> {
    b64()
        .decode(s)
        .with_context(|| format!("{what}: the server sent an envelope that is not base64"))
}

fn text<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v[key]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer lacks {key:?}"))
}

fn key_string(v: &Value) -> String {
    format!(
        "{}|{}",
        v["issuer"].as_str().unwrap_or_default(),
        v["subject"].as_str().unwrap_or_default()
    )
}

/// Runs one custody command.
pub(crate) async fn run(cmd: CustodyCmd, client: &Client, json_out: bool) -> anyhow::Result<i32> {
    let print = |v: &Value, human: String| {
        if json_out {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            println!("{human}");
        }
    };
    match cmd {
        CustodyCmd::Keygen { out } => {
            let id = keygen(&out)?;
            print(&json!({"recipient": id}), id.clone());
        }
        CustodyCmd::Secrets => {
            let v = client
                .call(Method::GET, "/v1/custody/secrets", None)
                .await?;
            let rows: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    format!(
                        "{}  account {}  {}  {}-of-{}  generation {}{}",
                        s["id"].as_str().unwrap_or("?"),
                        s["account"].as_str().unwrap_or("?"),
                        s["kind"].as_str().unwrap_or("?"),
                        s["threshold"],
                        s["custodians"].as_array().map(|c| c.len()).unwrap_or(0),
                        s["generation"],
                        if s["needs_rotation"].as_bool() == Some(true) {
                            format!(
                                "  NEEDS ROTATION (released for {})",
                                s["released_for"].as_str().unwrap_or("?")
                            )
                        } else if s["generation"] == 0 {
                            "  not sealed".into()
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            print(&v, rows.join("\n"));
        }
        CustodyCmd::Seal {
            secret,
            account,
            kind,
        } => {
            let v = seal(client, secret, account, kind).await?;
            print(
                &v,
                format!(
                    "sealed {} (generation {}): each custodian holds one share; the server holds none it can read",
                    v["secret"].as_str().unwrap_or("?"),
                    v["generation"]
                ),
            );
        }
        CustodyCmd::Request {
            entitlement,
            duration,
            reason,
            ticket,
        } => {
            let v = client
                .call(
                    Method::POST,
                    "/v1/requests",
                    Some(json!({"entitlement": entitlement, "duration": duration, "reason": reason, "ticket": ticket})),
                )
                .await?;
            let id = text(&v, "id")?.to_string();
            let path = attach_one_time_key(client, &id).await?;
            print(
                &v,
                format!(
                    "{id}  {}  custody request; one-time key kept at {}\nwaiting for approval: an approver runs `twokey approve {id}`; then custodians run `twokey custody release {id} --identity FILE`",
                    v["state"].as_str().unwrap_or("?"),
                    path.display()
                ),
            );
        }
        CustodyCmd::Release { id, identity } => {
            let v = release(client, &id, &identity).await?;
            print(&v, progress_line(&v));
        }
        CustodyCmd::Open { id } => return open(client, &id, json_out).await,
        CustodyCmd::Status { id } => {
            let v = client
                .call(Method::GET, &format!("/v1/custody/requests/{id}"), None)
                .await?;
            print(&v, progress_line(&v));
        }
    }
    Ok(0)
}

fn progress_line(v: &Value) -> String {
    format!(
        "{}  {}  secret {}  released {} of {}{}",
        v["request"].as_str().unwrap_or("?"),
        v["state"].as_str().unwrap_or("?"),
        v["secret"].as_str().unwrap_or("?"),
        v["released"],
        v["threshold"],
        v["released_by"]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|a| format!(
                " (by {})",
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .unwrap_or_default()
    )
}

fn keygen(out: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let id = CustodianIdentity::generate();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    f.write_all(id.file_text().as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(id.recipient().to_string())
}

/// Reads the secret from stdin: a hidden prompt on a terminal, else all of
/// stdin (one trailing newline dropped). Never from the command line.
fn read_secret() -> anyhow::Result<RootSecret> {
    if std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password("secret to seal (not shown): ")
            .context("cannot read the secret from the terminal")?;
        return Ok(RootSecret::from_input(typed));
    }
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .context("cannot read the secret from stdin (it must be UTF-8 text)")?;
    Ok(RootSecret::from_input(buf))
}

async fn seal(
    client: &Client,
    secret: Option<String>,
    account: Option<String>,
    kind: Option<String>,
) -> anyhow::Result<Value> {
    let all = client
        .call(Method::GET, "/v1/custody/secrets", None)
        .await?;
    let list = all.as_array().cloned().unwrap_or_default();
    let decl = match (&secret, &account, &kind) {
        (Some(id), _, _) => list.iter().find(|s| s["id"] == id.as_str()),
        (None, Some(a), Some(k)) => list
            .iter()
            .find(|s| s["account"] == a.as_str() && s["kind"] == k.as_str()),
        _ => bail!("name the secret: --secret ID, or --account ID --kind KIND"),
    }
    .ok_or_else(|| {
        anyhow!(
            "the policy has no custody secret {}; declared: {}",
            secret.clone().unwrap_or_else(|| format!(
                "for account {} kind {}",
                account.clone().unwrap_or_default(),
                kind.clone().unwrap_or_default()
            )),
            list.iter()
                .map(|s| format!(
                    "{} ({} {})",
                    s["id"].as_str().unwrap_or("?"),
                    s["account"].as_str().unwrap_or("?"),
                    s["kind"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let id = text(decl, "id")?.to_string();
    let generation = decl["generation"].as_u64().unwrap_or(0) + 1;
    let threshold = decl["threshold"].as_u64().unwrap_or(0) as usize;
    let custodians = decl["custodians"].as_array().cloned().unwrap_or_default();
    let root = read_secret()?;
    let shares = shamir::split(&root, threshold, custodians.len())?;
    drop(root);
    let mut sealed = Vec::new();
    for (share, c) in shares.iter().zip(&custodians) {
        let ctx = ShareContext {
            secret: id.clone(),
            generation,
            index: share.index,
            custodian: key_string(&c["key"]),
            recipient: text(c, "recipient")?.to_string(),
        };
        let env = envelope::seal_share(share, &ctx)?;
        sealed.push(json!({"index": share.index, "envelope": b64().encode(env)}));
    }
    client
        .call(
            Method::POST,
            &format!("/v1/custody/secrets/{id}/seal"),
            Some(json!({"generation": generation, "shares": sealed})),
        )
        .await
}

/// Creates the one-time key of a custody request on this machine and
/// registers its public half with the server.
pub(crate) async fn attach_one_time_key(client: &Client, id: &str) -> anyhow::Result<PathBuf> {
    let key = OneTimeKey::create(&key_dir()?, id)?;
    client
        .call(
            Method::POST,
            &format!("/v1/custody/requests/{id}/recipient"),
            Some(json!({"recipient": key.identity.recipient().to_string()})),
        )
        .await?;
    Ok(key.path)
}

/// After `twokey request`: a custody entitlement gets its one-time key too.
pub(crate) async fn after_request(
    client: &Client,
    request: &Value,
) -> anyhow::Result<Option<PathBuf>> {
    let ent = request["entitlement"].as_str().unwrap_or_default();
    // A policy that cannot be read leaves ordinary requests alone; a custody
    // request without its key is reported by `twokey custody status`.
    let Ok(policy) = client.call(Method::GET, "/v1/policy", None).await else {
        return Ok(None);
    };
    if policy["entitlements"][ent]["provider"] != twokey_core::custody::PROVIDER {
        return Ok(None);
    }
    Ok(Some(
        attach_one_time_key(client, text(request, "id")?).await?,
    ))
}

async fn release(client: &Client, id: &str, identity: &Path) -> anyhow::Result<Value> {
    let me = CustodianIdentity::from_file(identity)?;
    let v = client
        .call(
            Method::GET,
            &format!("/v1/custody/requests/{id}/share"),
            None,
        )
        .await?;
    let index = v["index"]
        .as_u64()
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| anyhow!("the server's answer lacks the share index"))?;
    let generation = v["generation"]
        .as_u64()
        .ok_or_else(|| anyhow!("the server's answer lacks the generation"))?;
    let expected = ShareContext {
        secret: text(&v, "secret")?.to_string(),
        generation,
        index,
        custodian: text(&v, "custodian")?.to_string(),
        recipient: text(&v, "recipient")?.to_string(),
    };
    let sealed = unb64("your share", text(&v, "envelope")?)?;
    let share = envelope::open_share(&sealed, &me, &expected)
        .with_context(|| format!("refusing to release for {id}"))?;
    let ctx = ReleaseContext {
        request: id.to_string(),
        secret: expected.secret.clone(),
        generation,
        index,
        custodian: expected.custodian.clone(),
        to: text(&v, "release_to")?.to_string(),
    };
    let out = envelope::seal_release(&share, &ctx)?;
    drop(share);
    eprintln!(
        "releasing share {index} of {:?} to {} for request {id} (reason: {})",
        expected.secret,
        v["requester"].as_str().unwrap_or("?"),
        v["reason"].as_str().unwrap_or("")
    );
    client
        .call(
            Method::POST,
            &format!("/v1/custody/requests/{id}/release"),
            Some(json!({"index": index, "envelope": b64().encode(out)})),
        )
        .await
}

async fn open(client: &Client, id: &str, json_out: bool) -> anyhow::Result<i32> {
    let key = OneTimeKey::load(&key_dir()?, id)?;
    let v = client
        .call(
            Method::GET,
            &format!("/v1/custody/requests/{id}/releases"),
            None,
        )
        .await?;
    let custodians: Vec<String> = v["custodians"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let expected = ReleaseExpectation {
        request: id.to_string(),
        secret: text(&v, "secret")?.to_string(),
        generation: v["generation"].as_u64().unwrap_or(0),
        custodians,
        threshold: v["threshold"].as_u64().unwrap_or(0) as usize,
    };
    let mut releases = Vec::new();
    for r in v["releases"].as_array().into_iter().flatten() {
        let label = format!(
            "release of share {} (from {})",
            r["index"],
            r["custodian"].as_str().unwrap_or("?")
        );
        let env = unb64(&label, text(r, "envelope")?)?;
        releases.push((label, env));
    }
    let secret = envelope::open_all(&releases, &key.identity, &expected)
        .with_context(|| format!("cannot open {id}"))?;
    let shown = String::from_utf8_lossy(secret.expose()).into_owned();
    let shown = zeroize::Zeroizing::new(shown);
    if json_out {
        println!("{}", json!({"request": id, "secret": shown.as_str()}));
    } else {
        println!("{}", shown.as_str());
        eprintln!(
            "opened {:?}; it now needs rotation: change it, then `twokey custody seal --secret {}`",
            expected.secret, expected.secret
        );
    }
    key.remove()?;
    Ok(0)
}
