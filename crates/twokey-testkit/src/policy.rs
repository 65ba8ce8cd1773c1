//! The people of the test policies: the demo's (`twokey serve --dev`),
//! written once. A test policy is `PEOPLE`, any extra identities its case
//! needs, and its own entitlements.
//!
//! `twokey-server`'s `dev::demo_policy` holds the same block; a test there
//! (`the_test_people_are_the_demo_people`) fails if the two drift apart.

/// alice requests (group `eng`); bob and carol approve (`approvers`) and
/// are the policy admins (`admins`, one other admin approves a change).
pub const PEOPLE: &str = r#"[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng"]

[[identity]]
name = "bob"
email = "bob@example.com"
groups = ["approvers", "admins"]

[[identity]]
name = "carol"
email = "carol@example.com"
groups = ["approvers", "admins"]
"#;

/// One more identity, with its groups, to append to [`PEOPLE`].
pub fn identity(name: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
    format!(
        "\n[[identity]]\nname = {name:?}\ngroups = [{}]\n",
        groups.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_a_toml_table() {
        assert_eq!(
            identity("dave", &["approvers", "eng"]),
            "\n[[identity]]\nname = \"dave\"\ngroups = [\"approvers\", \"eng\"]\n"
        );
        assert_eq!(
            identity("frank", &[]),
            "\n[[identity]]\nname = \"frank\"\ngroups = []\n"
        );
    }
}
