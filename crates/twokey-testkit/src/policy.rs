//! The people of the test policies: the demo's (`twokey serve --dev`),
//! from the one place the demo takes them. A test policy is `PEOPLE`, any
//! extra identities its case needs, and its own entitlements.

/// alice requests (group `eng`); bob and carol approve (`approvers`) and
/// are the policy admins (`admins`, one other admin approves a change).
pub use twokey_core::policy::DEMO_PEOPLE as PEOPLE;
