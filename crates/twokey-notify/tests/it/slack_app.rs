//! The Approve-from-Slack message: buttons carry the request id, go once
//! the request is decided, and mrkdwn is escaped.

use serde_json::Value;
use twokey_notify::slack_app::{approval_message, ApprovalView, ACTION_APPROVE, ACTION_DENY};

fn view(buttons: bool) -> ApprovalView {
    ApprovalView {
        request_id: "req-1".into(),
        requester: "alice <a>".into(),
        entitlement: "prod-db".into(),
        reason: "incident".into(),
        ticket: Some("INC-1".into()),
        duration: "1h".into(),
        link: "https://twokey.example.com/ui/requests/req-1".into(),
        state: "Waiting for 1 approval".into(),
        history: vec!["bob approved".into()],
        buttons,
        approver_mfa: false,
    }
}

#[test]
fn buttons_carry_the_request_and_go_once_decided() {
    let m = approval_message(&view(true));
    let actions: Vec<&Value> = m["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .collect();
    assert_eq!(actions.len(), 1);
    let ids: Vec<&str> = actions[0]["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action_id"].as_str())
        .collect();
    assert_eq!(ids, [ACTION_APPROVE, ACTION_DENY]);
    assert!(actions[0]["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["value"] == "req-1"));
    assert!(
        m.to_string().contains("alice &lt;a&gt;"),
        "mrkdwn is escaped"
    );
    let done = approval_message(&view(false));
    assert!(!done.to_string().contains(ACTION_APPROVE));
}
