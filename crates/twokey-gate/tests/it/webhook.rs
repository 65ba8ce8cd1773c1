//! Webhook signature, delivery id and payload parsing.

use twokey_gate::webhook::{
    delivery_id, sign, verify_signature, Event, WebhookError, MAX_BODY_BYTES,
};

#[test]
fn githubs_documented_example_signature_verifies() {
    // From GitHub's "Validating webhook deliveries" documentation.
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(sign(secret, body), header);
    assert_eq!(verify_signature(secret, body, Some(header)), Ok(()));
}

#[test]
fn forged_and_malformed_signatures_are_refused() {
    let secret = b"s3cret";
    let body = br#"{"action":"opened"}"#;
    let good = sign(secret, body);
    assert_eq!(
        verify_signature(secret, body, None),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        verify_signature(b"other", body, Some(&good)),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_signature(secret, br#"{"action":"closed"}"#, Some(&good)),
        Err(WebhookError::BadSignature)
    );
    let sha1ish = good.replace("sha256=", "sha1=");
    assert_eq!(
        verify_signature(secret, body, Some(&sha1ish)),
        Err(WebhookError::MalformedSignature)
    );
    assert_eq!(
        verify_signature(secret, body, Some("sha256=zz")),
        Err(WebhookError::MalformedSignature)
    );
    assert_eq!(
        verify_signature(secret, body, Some(&good[..good.len() - 2])),
        Err(WebhookError::MalformedSignature)
    );
}

#[test]
fn oversized_bodies_are_refused_before_hashing() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let sig = sign(b"k", &body);
    assert_eq!(
        verify_signature(b"k", &body, Some(&sig)),
        Err(WebhookError::TooLarge(MAX_BODY_BYTES))
    );
}

#[test]
fn delivery_ids_are_checked() {
    assert_eq!(
        delivery_id(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")).as_deref(),
        Ok("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert!(delivery_id(None).is_err());
    assert!(delivery_id(Some("")).is_err());
    assert!(delivery_id(Some("a'; DROP TABLE x")).is_err());
    assert!(delivery_id(Some(&"a".repeat(65))).is_err());
}

#[test]
fn unknown_events_and_bad_payloads() {
    assert!(matches!(Event::parse("star", b"{}"), Ok(Event::Other(_))));
    assert!(matches!(Event::parse("ping", b"{}"), Ok(Event::Ping)));
    assert!(matches!(
        Event::parse("pull_request", b"{\"action\":1}"),
        Err(WebhookError::Payload(_))
    ));
}
