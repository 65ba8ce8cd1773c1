//! Approve from Slack, the pure parts: the v0 request signature (good,
//! Slack's documented example, forged, stale, future, malformed, missing
//! headers) and the `[slack]` settings (links only by Slack user id, every
//! mistake named).

use twokey_core::event::SlackRefusal;
use twokey_server::slack::{sign, verify, SignatureError, SlackApp, SlackConfig};

const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
const BODY: &[u8] = b"payload=%7B%22type%22%3A%22block_actions%22%7D";

#[test]
fn a_good_signature_verifies() {
    let ts = "1531420618";
    let sig = sign(SECRET, ts, BODY);
    assert_eq!(
        verify(SECRET, Some(ts), Some(&sig), BODY, 1531420618),
        Ok(1531420618)
    );
    // Anywhere inside the window, either way.
    assert!(verify(SECRET, Some(ts), Some(&sig), BODY, 1531420618 + 300).is_ok());
    assert!(verify(SECRET, Some(ts), Some(&sig), BODY, 1531420618 - 300).is_ok());
}

#[test]
fn slacks_documented_example_verifies() {
    // The worked example of https://api.slack.com/authentication/verifying-requests-from-slack
    let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
    let ts = "1531420618";
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    assert_eq!(sign(secret, ts, body), sig);
    assert!(verify(secret, Some(ts), Some(sig), body, 1531420618).is_ok());
}

#[test]
fn forged_stale_future_and_missing_are_refused() {
    let ts = "1700000000";
    let now = 1_700_000_000;
    let sig = sign(SECRET, ts, BODY);
    // Another secret, another body, another timestamp than signed.
    let forged = sign(b"not the signing secret at all!!", ts, BODY);
    assert_eq!(
        verify(SECRET, Some(ts), Some(&forged), BODY, now),
        Err(SignatureError::BadSignature)
    );
    assert_eq!(
        verify(SECRET, Some(ts), Some(&sig), b"payload=other", now),
        Err(SignatureError::BadSignature)
    );
    assert_eq!(
        verify(SECRET, Some("1700000001"), Some(&sig), BODY, now),
        Err(SignatureError::BadSignature)
    );
    // Signed correctly, but outside the window.
    let old = "1699999699";
    let s = sign(SECRET, old, BODY);
    assert!(matches!(
        verify(SECRET, Some(old), Some(&s), BODY, now),
        Err(SignatureError::Stale { .. })
    ));
    let future = "1700000301";
    let s = sign(SECRET, future, BODY);
    assert!(matches!(
        verify(SECRET, Some(future), Some(&s), BODY, now),
        Err(SignatureError::Future { .. })
    ));
    // Missing and malformed headers.
    assert_eq!(
        verify(SECRET, None, Some(&sig), BODY, now),
        Err(SignatureError::MissingTimestamp)
    );
    assert_eq!(
        verify(SECRET, Some(ts), None, BODY, now),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        verify(SECRET, Some("-5"), Some(&sig), BODY, now),
        Err(SignatureError::MalformedTimestamp)
    );
    assert_eq!(
        verify(SECRET, Some("17e8"), Some(&sig), BODY, now),
        Err(SignatureError::MalformedTimestamp)
    );
    assert_eq!(
        verify(
            SECRET,
            Some(ts),
            Some(&sig.replace("v0=", "v1=")),
            BODY,
            now
        ),
        Err(SignatureError::MalformedSignature)
    );
    assert_eq!(
        verify(SECRET, Some(ts), Some("v0=abcd"), BODY, now),
        Err(SignatureError::MalformedSignature)
    );
    assert_eq!(
        verify(SECRET, Some(ts), Some(&sig[..sig.len() - 2]), BODY, now),
        Err(SignatureError::MalformedSignature)
    );
    assert_eq!(
        SignatureError::BadSignature.refusal(),
        SlackRefusal::Signature
    );
    assert_eq!(
        SignatureError::Stale {
            timestamp: 0,
            now: 0
        }
        .refusal(),
        SlackRefusal::Timestamp
    );
}

fn cfg(links: &str) -> Result<SlackConfig, String> {
    let text =
        format!("bot_token = \"xoxb-1-2-abc\"\nsigning_secret = \"0123456789abcdef0123\"\n{links}");
    let c: SlackConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
    c.validate().map(|()| c)
}

#[test]
fn config_mistakes_are_named() {
    let ok = cfg("[[link]]\nuser = \"U0123ABC\"\nteam = \"T0AAA\"\nidentity = \"twokey|bob\"\n")
        .expect("valid");
    assert_eq!(ok.api_url, "https://slack.com/api");
    assert!(
        !format!("{ok:?}").contains("xoxb-1-2-abc"),
        "the token is redacted"
    );
    assert!(
        !format!("{ok:?}").contains("0123456789abcdef0123"),
        "the secret is redacted"
    );
    let err = cfg("").expect_err("no links");
    assert!(err.contains("no [[slack.link]]"), "{err}");
    let err = cfg("[[link]]\nuser = \"bob@example.com\"\nidentity = \"twokey|bob\"\n")
        .expect_err("email");
    assert!(err.contains("not a name or an email"), "{err}");
    let err = cfg("[[link]]\nuser = \"U0123ABC\"\nidentity = \"bob\"\n").expect_err("identity");
    assert!(err.contains("issuer|subject"), "{err}");
    let err = cfg("[[link]]\nuser = \"U0123ABC\"\nidentity = \"twokey|bob\"\n[[link]]\nuser = \"U0123ABC\"\nidentity = \"twokey|carol\"\n").expect_err("two identities");
    assert!(err.contains("already linked"), "{err}");
    let err = cfg("[[link]]\nuser = \"U0123ABC\"\nteam = \"x\"\nidentity = \"twokey|bob\"\n")
        .expect_err("team");
    assert!(err.contains("team"), "{err}");
    assert!(
        cfg("[[link]]\nuser = \"U0123ABC\"\nname = \"bob\"\nidentity = \"twokey|bob\"\n").is_err(),
        "unknown keys are refused"
    );
    let bad_token: SlackConfig = toml::from_str("bot_token = \"xoxp-user\"\nsigning_secret = \"0123456789abcdef0123\"\n[[link]]\nuser = \"U0123ABC\"\nidentity = \"twokey|bob\"\n").expect("parses");
    assert!(bad_token
        .validate()
        .expect_err("user token")
        .contains("bot token"));
    let bad_url: SlackConfig = toml::from_str("bot_token = \"xoxb-1\"\nsigning_secret = \"0123456789abcdef0123\"\napi_url = \"slack.com/api\"\n[[link]]\nuser = \"U0123ABC\"\nidentity = \"twokey|bob\"\n").expect("parses");
    assert!(bad_url.validate().expect_err("url").contains("api_url"));
}

#[test]
fn links_match_the_user_and_the_team_only() {
    let c = cfg("[[link]]\nuser = \"U0BOB\"\nteam = \"T0ONE\"\nidentity = \"twokey|bob\"\n[[link]]\nuser = \"U0CAROL\"\nidentity = \"twokey|carol\"\n").expect("valid");
    let app = SlackApp::new(c, "https://twokey.example.com/").expect("app");
    assert_eq!(
        app.link_of("U0BOB", Some("T0ONE"))
            .map(|l| l.identity.as_str()),
        Some("twokey|bob")
    );
    assert!(
        app.link_of("U0BOB", Some("T0TWO")).is_none(),
        "another workspace's U0BOB is not bob"
    );
    assert!(app.link_of("U0BOB", None).is_none());
    assert!(app.link_of("U0CAROL", Some("T0TWO")).is_some());
    assert!(app.link_of("U0EVE", Some("T0ONE")).is_none());
    assert_eq!(
        app.link_page("req-1"),
        "https://twokey.example.com/ui/requests/req-1"
    );
}
