//! Alert sinks against a local HTTP receiver (axum on 127.0.0.1:0).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use twokey_notify::{
    build_sinks, send_all, verify_signature, Alert, AlertSink, NotifyError, Severity, SinkConfig,
    SlackSink, WebhookSink, EVENT_HEADER, SIGNATURE_HEADER,
};

/// What the receiver saw: headers and body of each POST.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// Starts a receiver answering every POST with `status`; returns its base URL.
async fn receiver(status: StatusCode) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/{*path}",
            post(
                |State((seen, status)): State<(Seen, StatusCode)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    seen.lock().unwrap().push((headers, body));
                    (status, "receiver says hi")
                },
            ),
        )
        .with_state((seen.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn alert() -> Alert {
    let mut a = Alert::new(
        "break_glass",
        Severity::Critical,
        "Break-glass: alice activated prod-db",
        "alice used break-glass on prod-db for 30m: INC-2211 <db down>",
        1_790_000_000_000,
    );
    a.request_id = Some("r-0001".into());
    a.link = Some("https://twokey.example.com/requests/r-0001".into());
    a.data = serde_json::json!({ "entitlement": "prod-db", "minutes": 30 });
    a
}

#[tokio::test]
async fn webhook_posts_the_alert_signed() {
    let (base, seen) = receiver(StatusCode::NO_CONTENT).await;
    let sink = WebhookSink::new(format!("{base}/hook"), "s3cret");
    sink.send(&alert()).await.unwrap();

    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    let got: Alert = serde_json::from_slice(body).unwrap();
    assert_eq!(got, alert());
    let raw: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(raw["severity"], "critical");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers[EVENT_HEADER], "break_glass");
    let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert!(verify_signature(b"s3cret", body, sig));
    assert!(!verify_signature(b"wrong secret", body, sig));
    let mut tampered = body.to_vec();
    tampered[2] ^= 1;
    assert!(!verify_signature(b"s3cret", &tampered, sig));
}

#[tokio::test]
async fn slack_gets_text_and_blocks_with_the_link() {
    let (base, seen) = receiver(StatusCode::OK).await;
    SlackSink::new(format!("{base}/services/T0/B0/XXXX"))
        .send(&alert())
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert!(headers.get(SIGNATURE_HEADER).is_none());
    let m: serde_json::Value = serde_json::from_slice(body).unwrap();
    let text = m["text"].as_str().unwrap();
    assert!(
        text.starts_with("[CRITICAL] Break-glass: alice activated prod-db"),
        "{text}"
    );
    assert!(text.contains("&lt;db down&gt;"), "{text}");
    let blocks = m["blocks"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["header", "section", "actions", "context"]);
    assert_eq!(
        blocks[2]["elements"][0]["url"],
        "https://twokey.example.com/requests/r-0001"
    );
    assert!(blocks[3]["elements"][0]["text"]
        .as_str()
        .unwrap()
        .contains("r-0001"));

    // Without a link there is no button.
    let mut plain = alert();
    plain.link = None;
    let m = SlackSink::message(&plain);
    assert!(m["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"] != "actions"));
}

#[tokio::test]
async fn a_5xx_is_a_retryable_error_and_a_4xx_is_not() {
    let (base, _) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let err = WebhookSink::new(format!("{base}/hook"), "k")
        .send(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("500") && err.to_string().contains("receiver says hi"));

    let (base, _) = receiver(StatusCode::TOO_MANY_REQUESTS).await;
    assert!(SlackSink::new(format!("{base}/x"))
        .send(&alert())
        .await
        .unwrap_err()
        .is_retryable());

    let (base, _) = receiver(StatusCode::NOT_FOUND).await;
    let err = SlackSink::new(format!("{base}/services/SECRET"))
        .send(&alert())
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[tokio::test]
async fn an_unreachable_receiver_is_retryable_and_keeps_the_url_secret() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = SlackSink::new(format!("http://127.0.0.1:{port}/services/SECRET"))
        .send(&alert())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Transport { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[tokio::test]
async fn configured_sinks_all_receive_the_alert() {
    let (ok, seen) = receiver(StatusCode::OK).await;
    let (failing, _) = receiver(StatusCode::BAD_GATEWAY).await;
    let configs: Vec<SinkConfig> = toml::from_str::<toml::Table>(&format!(
        "[[sink]]\nkind = \"webhook\"\nurl = \"{ok}/hook\"\nsecret = \"k\"\n\
         [[sink]]\nkind = \"slack\"\nwebhook_url = \"{ok}/slack\"\n\
         [[sink]]\nkind = \"slack\"\nwebhook_url = \"{failing}/slack\"\n"
    ))
    .unwrap()["sink"]
        .clone()
        .try_into()
        .unwrap();
    let sinks = build_sinks(&configs);
    let failures = send_all(&sinks, &alert()).await;
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "slack");
    assert!(failures[0].1.is_retryable());
}
