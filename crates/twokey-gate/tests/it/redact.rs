//! Redaction of plan output and comment splitting.

use twokey_gate::redact::{contains_secret, redact, split_comment, GITHUB_COMMENT_LIMIT, MASK};

#[test]
fn secret_looking_strings_are_redacted() {
    let cases: &[(&str, &str)] = &[
        ("  + access_key = \"AKIAIOSFODNN7EXAMPLE\"", "AKIAIOSFODNN7EXAMPLE"),
        ("key id AKIAIOSFODNN7EXAMPLE in text", "AKIAIOSFODNN7EXAMPLE"),
        (
            "  + secret = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("  + password = \"hunter2\"", "hunter2"),
        ("  ~ db_password = \"old-pw\" -> \"new-pw\"", "old-pw"),
        ("\"api_key\": \"abc123\"", "abc123"),
        ("TOKEN=plain-token-value", "plain-token-value"),
        (
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        ("slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        (
            "url = postgres://admin:Sup3rS3cret@db.internal:5432/app",
            "Sup3rS3cret",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
        ),
        (
            "  + output = \"Zm9vYmFyYmF6cXV4UXVhbGl0eTEyMzQ1Njc4OTA\"",
            "Zm9vYmFyYmF6cXV4UXVhbGl0eTEyMzQ1Njc4OTA",
        ),
    ];
    for (input, secret) in cases {
        let out = redact(input, &[]);
        assert!(!out.contains(secret), "{input:?} -> {out:?}");
        assert!(out.contains(MASK), "{input:?} -> {out:?}");
    }
}

#[test]
fn known_values_are_redacted_anywhere() {
    let out = redact(
        "  + name = \"prefix-correct horse-suffix\"",
        &["correct horse".into()],
    );
    assert_eq!(out, format!("  + name = \"prefix-{MASK}-suffix\""));
}

#[test]
fn ordinary_plan_output_is_left_alone() {
    let plan = r#"Terraform will perform the following actions:

Changes to Outputs:
  + bucket_name = "twokey-prod-logs"
  + commit      = "9f3b2c1d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c"
  + id          = "6c8f2a7e-1b3d-4e5f-9a0b-1c2d3e4f5a6b"
  + arn         = "arn:aws:iam::123456789012:role/deploy"
  + db_password = (sensitive value)
  + token       = (known after apply)

Plan: 0 to add, 0 to change, 0 to destroy.
"#;
    assert_eq!(redact(plan, &[]), plan);
    assert!(!contains_secret(plan, &[]));
}

#[test]
fn long_plans_split_below_githubs_limit_and_lose_nothing() {
    let line = "  + resource \"null\" \"x\" { value = \"abcdefghij\" }\n";
    let body: String = line.repeat(5000); // ~260 kB
    let parts = split_comment("### Plan for `prod`", &body, GITHUB_COMMENT_LIMIT);
    assert!(parts.len() >= 4, "{}", parts.len());
    let n = parts.len();
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.len() <= GITHUB_COMMENT_LIMIT,
            "part {i} is {} bytes",
            p.len()
        );
        assert!(p.starts_with(&format!("### Plan for `prod` (part {}/{n})\n```\n", i + 1)));
        assert!(p.ends_with("```\n"));
        let inner = p
            .split_once("```\n")
            .map(|x| x.1)
            .and_then(|s| s.strip_suffix("```\n"))
            .unwrap_or_default();
        joined.push_str(inner);
    }
    assert_eq!(joined, body);
}

#[test]
fn one_enormous_line_and_multibyte_text_split_safely() {
    let body = "é".repeat(100_000); // 200 kB in one line, two bytes per char
    let parts = split_comment("h", &body, GITHUB_COMMENT_LIMIT);
    assert!(parts.len() >= 3);
    for p in &parts {
        assert!(p.len() <= GITHUB_COMMENT_LIMIT);
    }
    let short = split_comment("h", "small\n", GITHUB_COMMENT_LIMIT);
    assert_eq!(short, vec!["h\n```\nsmall\n```\n".to_string()]);
}
