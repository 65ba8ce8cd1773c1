//! twokey-iam against @cloud-copilot/iam-simulate on the same cases.
//!
//! The npm package ships only its compiled engine, not its data-driven test
//! cases (`src/core_engine/coreEngineTests/` is not in the tarball), so the
//! corpus is ours: hand-written cases for the same categories (SCPs, RCPs,
//! session policies, permissions boundaries, resource policies same and
//! cross account, role trust, KMS, NotPrincipal, conditions) and seeded
//! random cases. Every case whose answers differ must be listed, with its
//! reason, in `crates/twokey-iam/DISAGREEMENTS.md`; any other disagreement
//! fails the test.

use crate::common;

use std::collections::BTreeSet;

use common::corpus::{categories, random_cases};
use common::*;

/// Case ids DISAGREEMENTS.md lists (lines starting with "- `id`").
fn listed() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("crates/twokey-iam/DISAGREEMENTS.md"))
        .expect("DISAGREEMENTS.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect()
}

#[test]
fn agrees_with_iam_simulate() {
    let Some(dir) = oracle_dir() else { return };
    let mut cases = categories();
    cases.extend(random_cases(2000));
    let (oracle, _) = run_oracle(&dir, &cases, None);
    let listed = listed();
    let (mut same, mut compared, mut refused) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut listed_agree = Vec::new();
    for (c, o) in cases.iter().zip(&oracle) {
        let Some(want) = &o.result else {
            refused += 1;
            eprintln!("oracle refused {}: {:?}", c.id, o.error);
            continue;
        };
        compared += 1;
        let got = match ours(&c.sim, &o.ignored) {
            Ok(d) => oracle_word(&d).to_string(),
            Err(e) => format!("error: {e}"),
        };
        if got == *want {
            same += 1;
            if listed.contains(&c.id) {
                listed_agree.push(c.id.clone());
            }
        } else if !listed.contains(&c.id) {
            unexpected.push(format!(
                "{}: iam-simulate {want}, twokey-iam {got}\n{}",
                c.id,
                serde_json::to_string(&c.sim).unwrap_or_default()
            ));
        }
    }
    let pct = 100.0 * same as f64 / compared.max(1) as f64;
    eprintln!(
        "agreement: {same}/{compared} cases ({pct:.2}%), {} listed disagreements, {refused} refused by the oracle",
        compared - same - unexpected.len()
    );
    if !listed_agree.is_empty() {
        eprintln!("listed but now agreeing (remove from DISAGREEMENTS.md): {listed_agree:?}");
    }
    assert!(
        unexpected.is_empty(),
        "{} unlisted disagreements:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        refused * 20 < cases.len(),
        "the oracle refused {refused} cases"
    );
}
