//! `twokey can` over an authorization-details file: the decision with its
//! deciding statement, the exit code, and "allowed if" for unknown context.

use std::path::PathBuf;
use std::process::Command;

fn details() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../twokey-iam/tests/data/auth-details.json")
}

fn can(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_twokey"))
        .arg("can")
        .args(args)
        .arg("--auth-details")
        .arg(details())
        .output()
        .expect("twokey runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn alice_can_assume_admin_and_the_answer_names_the_statement() {
    let (code, out) = can(&[
        "arn:aws:iam::111122223333:user/alice",
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/admin",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("Allowed"), "{out}");
    assert!(
        out.contains("identity alice/assume-admin Statement[0]"),
        "{out}"
    );
}

#[test]
fn bob_cannot_and_unknown_context_is_conditional() {
    let (code, out) = can(&[
        "arn:aws:iam::111122223333:user/bob",
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/admin",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("ImplicitDeny"), "{out}");
    let (code, out) = can(&[
        "arn:aws:iam::111122223333:user/alice",
        "s3:GetObject",
        "arn:aws:s3:::logs/x",
        "--unknown",
        "aws:PrincipalTag/team",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("AllowedIf") && out.contains("aws:PrincipalTag/team"),
        "{out}"
    );
}

#[test]
fn an_unknown_principal_is_a_clear_error() {
    let (code, out) = can(&[
        "arn:aws:iam::111122223333:user/mallory",
        "s3:GetObject",
        "*",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mallory is not a user or role"), "{out}");
}
