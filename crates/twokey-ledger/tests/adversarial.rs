//! Adversarial tests: an attacker with write access to the stored log tries to
//! change, delete, reorder, truncate, insert, fork or rewrite it. Every attempt
//! must be detected with a message that names the entry and the reason, and
//! the untouched log must verify.

use serde_json::json;
use twokey_ledger::bundle::{verify_bundle_dir, Bundle, DirSink, Sink, SinkError};
use twokey_ledger::checkpoint::{Checkpoint, NoteSigner};
use twokey_ledger::merkle::Frontier;
use twokey_ledger::verify::{verify_encoded, verify_entries, LogVerifier, Summary, VerifyError};
use twokey_ledger::LedgerEntry;

const ORIGIN: &str = "twokey.test/ledger";
const EVERY: u64 = 10;
const N: u64 = 100;

fn real_key() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[1; 32]).unwrap()
}

fn entry(i: u64) -> LedgerEntry {
    LedgerEntry {
        index: i,
        time_ms: 1_700_000_000_000 + i as i64 * 1000,
        kind: ["request.created", "review.approved", "grant.activated"][i as usize % 3].into(),
        actor: format!("https://idp.example|user{}", i % 7),
        subject: format!("req-{}", i / 3),
        policy_hash: "9f2c1e".into(),
        data: json!({"entitlement": "prod-db", "reason": format!("INC-{i}"), "minutes": 30}),
    }
}

fn log() -> Vec<LedgerEntry> {
    (0..N).map(entry).collect()
}

/// Signed checkpoints every EVERY entries, as the server would make them.
fn checkpoints(entries: &[LedgerEntry], key: &NoteSigner) -> Vec<(String, String)> {
    let mut f = Frontier::new();
    let mut out = Vec::new();
    for e in entries {
        f.push(e.leaf_hash());
        if f.size().is_multiple_of(EVERY) {
            let cp = Checkpoint::new(ORIGIN, f.size(), f.root());
            out.push((format!("checkpoint {}", f.size()), key.sign_checkpoint(&cp)));
        }
    }
    out
}

fn checkpoint_at(cps: &[(String, String)], size: u64) -> String {
    cps[(size / EVERY - 1) as usize].1.clone()
}

fn verify(
    entries: &[LedgerEntry],
    cps: &[(String, String)],
    trusted: Option<&str>,
) -> Result<Summary, VerifyError> {
    verify_entries(entries, &real_key().verifier(), cps, trusted)
}

fn err(entries: &[LedgerEntry], cps: &[(String, String)], trusted: Option<&str>) -> String {
    match verify(entries, cps, trusted) {
        Ok(s) => panic!("tampering not detected: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn untouched_log_verifies() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    let trusted = checkpoint_at(&cps, 50);
    let s = verify(&l, &cps, Some(&trusted)).unwrap();
    assert_eq!(s.entries, N);
    assert_eq!(s.checkpoints_verified, 10);
    assert!(s.trusted_verified);
    let lines: Vec<Vec<u8>> = l.iter().map(LedgerEntry::encode).collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let s2 = verify_encoded(&refs, &real_key().verifier(), &cps, Some(&trusted)).unwrap();
    assert_eq!(s2, s);
}

#[test]
fn one_changed_field_of_one_entry_is_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    type Mutation = (&'static str, fn(&mut LedgerEntry));
    let mutations: Vec<Mutation> = vec![
        ("time_ms", |e| e.time_ms ^= 1),
        ("kind", |e| e.kind.replace_range(0..1, "R")),
        ("actor", |e| e.actor.push('x')),
        ("subject", |e| e.subject = e.subject.replace('1', "2")),
        ("policy_hash", |e| e.policy_hash.replace_range(0..1, "8")),
        ("data", |e| e.data["minutes"] = json!(31)),
    ];
    for (field, m) in mutations {
        let mut bad = l.clone();
        m(&mut bad[41]);
        let msg = err(&bad, &cps, None);
        assert!(
            msg.starts_with("entries 40..=49: hash does not match checkpoint of size 50 signed by twokey.test/ledger+"),
            "{field}: {msg}"
        );
    }
    // Changing the index field shows up as a reordering.
    let mut bad = l.clone();
    bad[41].index ^= 1;
    assert_eq!(
        err(&bad, &cps, None),
        "entry 41: found entry 40 in its place, which belongs earlier (duplicated, reordered or inserted)"
    );
}

#[test]
fn every_single_byte_change_of_a_stored_entry_is_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    let lines: Vec<Vec<u8>> = l.iter().map(LedgerEntry::encode).collect();
    // Verify the untouched prefix once; each mutation continues from a clone.
    let mut prefix = LogVerifier::new(&real_key().verifier(), &cps, None).unwrap();
    for line in &lines[..41] {
        prefix.push_encoded(line).unwrap();
    }
    for pos in 0..lines[41].len() {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut bad = lines[41].clone();
            bad[pos] ^= flip;
            let mut v = prefix.clone();
            let r = v
                .push_encoded(&bad)
                .and_then(|()| lines[42..].iter().try_for_each(|l| v.push_encoded(l)))
                .and_then(|()| v.finish());
            let msg = r.expect_err("a changed byte must not verify").to_string();
            assert!(
                msg.starts_with("entry 4") || msg.starts_with("entries 40..=49"),
                "{msg}"
            );
        }
    }
}

#[test]
fn deleted_entry_is_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    let mut bad = l.clone();
    bad.remove(41);
    assert_eq!(
        err(&bad, &cps, None),
        "entry 41: missing, found entry 42 in its place (deleted, reordered or inserted)"
    );
    // Renumbering the rest to hide the gap breaks the hashes instead.
    for (i, e) in bad.iter_mut().enumerate() {
        e.index = i as u64;
    }
    assert!(err(&bad, &cps, None)
        .starts_with("entries 40..=49: hash does not match checkpoint of size 50"));
}

#[test]
fn swapped_entries_are_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    let mut bad = l.clone();
    bad.swap(41, 42);
    assert_eq!(
        err(&bad, &cps, None),
        "entry 41: missing, found entry 42 in its place (deleted, reordered or inserted)"
    );
    // Swapping contents but keeping the indexes in order breaks the hashes.
    bad[41].index = 41;
    bad[42].index = 42;
    assert!(err(&bad, &cps, None).starts_with("entries 40..=49: hash does not match"));
}

#[test]
fn dropped_tail_is_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    assert_eq!(
        err(&l[..95], &cps, None),
        format!(
            "entries end at 94 but checkpoint says 100: truncated (checkpoint signed by {})",
            real_key().verifier().label()
        )
    );
    // Dropping the later checkpoints too is caught by a trusted checkpoint held elsewhere.
    let trusted = checkpoint_at(&cps, 50);
    assert_eq!(
        err(&l[..35], &cps[..3], Some(&trusted)),
        "entries end at 34 but trusted checkpoint says 50: truncated"
    );
    assert_eq!(
        err(&[], &[], Some(&trusted)),
        "log is empty but trusted checkpoint says 50: truncated"
    );
}

#[test]
fn inserted_entry_is_detected() {
    let l = log();
    let cps = checkpoints(&l, &real_key());
    let mut bad = l.clone();
    let mut forged = entry(41);
    forged.actor = "https://idp.example|mallory".into();
    bad.insert(41, forged);
    assert_eq!(
        err(&bad, &cps, None),
        "entry 42: found entry 41 in its place, which belongs earlier (duplicated, reordered or inserted)"
    );
    for (i, e) in bad.iter_mut().enumerate() {
        e.index = i as u64;
    }
    assert!(err(&bad, &cps, None).starts_with("entries 40..=49: hash does not match"));
}

#[test]
fn consistent_fork_signed_by_another_key_is_refused() {
    let mut fork = log();
    fork[10].actor = "https://idp.example|mallory".into();
    let other = NoteSigner::from_seed(ORIGIN, &[2; 32]).unwrap();
    let cps = checkpoints(&fork, &other);
    let msg = err(&fork, &cps, None);
    assert!(
        msg.starts_with(&format!(
            "checkpoint 10: checkpoint signed by unknown key {}; expected a signature by {}",
            other.verifier().label(),
            real_key().verifier().label()
        )),
        "{msg}"
    );
}

#[test]
fn history_rewritten_with_the_real_key_is_caught_by_an_exported_checkpoint() {
    let l = log();
    let exported = checkpoint_at(&checkpoints(&l, &real_key()), 50);
    let mut rewritten = l.clone();
    rewritten[30].data["reason"] = json!("nothing to see");
    let cps = checkpoints(&rewritten, &real_key());
    // Self-consistent on its own...
    verify(&rewritten, &cps, None).unwrap();
    // ...but not with the checkpoint exported before the rewrite.
    let msg = err(&rewritten, &cps, Some(&exported));
    assert!(
        msg.starts_with("fork: trusted checkpoint size 50 root "),
        "{msg}"
    );
    assert!(msg.contains(" but log prefix root "), "{msg}");
    // And if the exported checkpoint is among the published ones, the two
    // signed roots for size 50 contradict each other.
    let mut with_old = cps.clone();
    with_old.push(("exported".into(), exported));
    assert!(
        err(&rewritten, &with_old, None).starts_with("fork: two checkpoints of size 50 signed by")
    );
}

#[test]
fn forged_checkpoint_text_is_refused() {
    let l = log();
    let mut cps = checkpoints(&l, &real_key());
    cps[4].1 = cps[4].1.replacen("\n50\n", "\n49\n", 1);
    assert_eq!(
        err(&l, &cps, None),
        format!(
            "checkpoint 50: checkpoint signature by {} is invalid: the checkpoint was altered or forged",
            real_key().verifier().label()
        )
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("twokey-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn publish_all(dir: &std::path::Path, l: &[LedgerEntry]) -> Vec<(String, String)> {
    let key = real_key();
    let cps = checkpoints(l, &key);
    let sink = DirSink::new(dir);
    let mut from = 0;
    for (_, note) in &cps {
        let cp = key.verifier().verify_checkpoint(note).unwrap();
        let size = cp.size;
        let b = Bundle::new(note.clone(), cp, from, &l[from as usize..size as usize]).unwrap();
        sink.publish(&b).unwrap();
        sink.publish(&b).unwrap(); // retries are no-ops
        from = size;
    }
    cps
}

#[test]
fn bundle_directory_verifies_and_detects_tampering() {
    let dir = temp_dir("bundles");
    let l = log();
    let cps = publish_all(&dir, &l);
    let key = real_key().verifier();
    let trusted = checkpoint_at(&cps, 100);
    let s = verify_bundle_dir(&dir, &key, Some(&trusted)).unwrap();
    assert_eq!((s.entries, s.checkpoints_verified), (N, 10));

    // Publishing a different bundle under an existing size is refused.
    let cp = key.verify_checkpoint(&cps[0].1).unwrap();
    let mut other = l[..10].to_vec();
    other[3].actor = "x".into();
    let b = Bundle::new(cps[0].1.clone(), cp, 0, &other).unwrap();
    assert!(matches!(
        DirSink::new(&dir).publish(&b),
        Err(SinkError::Conflict { .. })
    ));

    // One changed byte in a stored entry.
    let f = dir.join("00000000000000000050/entries.ndjson");
    let orig = std::fs::read(&f).unwrap();
    let mut bad = orig.clone();
    let at = bad.iter().position(|b| *b == b'I').unwrap();
    bad[at] = b'J';
    std::fs::write(&f, &bad).unwrap();
    let msg = verify_bundle_dir(&dir, &key, None).unwrap_err().to_string();
    assert!(
        msg.starts_with("entries 40..=49: hash does not match checkpoint of size 50"),
        "{msg}"
    );
    std::fs::write(&f, &orig).unwrap();

    // A deleted bundle in the middle leaves a gap.
    let mid = dir.join("00000000000000000030");
    let saved = temp_dir("saved");
    std::fs::rename(&mid, &saved).unwrap();
    let msg = verify_bundle_dir(&dir, &key, None).unwrap_err().to_string();
    assert_eq!(
        msg,
        "entry 20: missing, found entry 30 in its place (deleted, reordered or inserted)"
    );
    std::fs::rename(&saved, &mid).unwrap();

    // The last bundle removed: only a trusted checkpoint can tell.
    let last = dir.join("00000000000000000100");
    std::fs::rename(&last, &saved).unwrap();
    verify_bundle_dir(&dir, &key, None).unwrap();
    let msg = verify_bundle_dir(&dir, &key, Some(&trusted))
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "entries end at 89 but trusted checkpoint says 100: truncated"
    );
    std::fs::rename(&saved, &last).unwrap();

    // The tail of a bundle's entries cut off.
    let f = dir.join("00000000000000000100/entries.ndjson");
    let orig = std::fs::read(&f).unwrap();
    let cut = orig[..orig.len() - 1]
        .rsplitn(2, |b| *b == b'\n')
        .nth(1)
        .unwrap()
        .to_vec();
    std::fs::write(&f, [cut.as_slice(), b"\n"].concat()).unwrap();
    let msg = verify_bundle_dir(&dir, &key, None).unwrap_err().to_string();
    assert!(
        msg.ends_with("entries end at 98 but checkpoint says 100: truncated"),
        "{msg}"
    );
    std::fs::write(&f, &orig).unwrap();

    verify_bundle_dir(&dir, &key, Some(&trusted)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

mod random_tampering {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Tamper {
        Change { at: usize, byte: usize },
        Delete { at: usize },
        Swap { at: usize },
        Insert { at: usize },
        Truncate { keep: usize },
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            (0usize..1000, 0usize..1000).prop_map(|(at, byte)| Tamper::Change { at, byte }),
            (0usize..1000).prop_map(|at| Tamper::Delete { at }),
            (0usize..1000).prop_map(|at| Tamper::Swap { at }),
            (0usize..1000).prop_map(|at| Tamper::Insert { at }),
            (0usize..1000).prop_map(|keep| Tamper::Truncate { keep }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any one tampering of the stored bytes of a log whose last entry is
        /// covered by a checkpoint is detected.
        #[test]
        fn any_tampering_is_detected(n in 2u64..60, t in tamper()) {
            let key = real_key();
            let entries: Vec<LedgerEntry> = (0..n).map(entry).collect();
            let mut f = Frontier::new();
            for e in &entries {
                f.push(e.leaf_hash());
            }
            let cp = key.sign_checkpoint(&Checkpoint::new(ORIGIN, n, f.root()));
            let cps = vec![("last".to_string(), cp)];
            let mut lines: Vec<Vec<u8>> = entries.iter().map(LedgerEntry::encode).collect();
            let len = lines.len();
            match t {
                Tamper::Change { at, byte } => {
                    let l = &mut lines[at % len];
                    let b = byte % l.len();
                    l[b] ^= 0x04;
                }
                Tamper::Delete { at } => {
                    lines.remove(at % len);
                }
                Tamper::Swap { at } => lines.swap(at % (len - 1), at % (len - 1) + 1),
                Tamper::Insert { at } => {
                    let extra = lines[at % len].clone();
                    lines.insert(at % len, extra);
                }
                Tamper::Truncate { keep } => lines.truncate(keep % len),
            }
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            prop_assert!(verify_encoded(&refs, &key.verifier(), &cps, None).is_err());
        }
    }
}

/// The batch verifier (runs of 4096 entries hashed on several threads, then
/// joined) must say exactly what entry-by-entry verification says, for a
/// log long enough to span several runs, with tampering inside a run, on a
/// run boundary and in the last run.
#[test]
fn batch_verification_reports_what_entry_by_entry_does() {
    const BIG: u64 = 4096 + 1500;
    let key = real_key();
    let l: Vec<LedgerEntry> = (0..BIG).map(entry).collect();
    // Checkpoints every 1000 entries, inside runs and between them.
    let mut cps = Vec::new();
    let mut f = Frontier::new();
    let mut trusted = String::new();
    for e in &l {
        f.push(e.leaf_hash());
        if f.size().is_multiple_of(1000) || f.size() == 4100 || f.size() == BIG {
            let cp = key.sign_checkpoint(&Checkpoint::new(ORIGIN, f.size(), f.root()));
            if f.size() == 4100 {
                trusted = cp;
            } else {
                cps.push((format!("checkpoint {}", f.size()), cp));
            }
        }
    }
    let lines: Vec<Vec<u8>> = l.iter().map(LedgerEntry::encode).collect();
    let one_by_one = |lines: &[Vec<u8>], start: usize| -> Result<Summary, String> {
        let mut v =
            LogVerifier::new(&key.verifier(), &cps, Some(&trusted)).map_err(|e| e.to_string())?;
        for line in &lines[..start] {
            v.push_encoded(line).map_err(|e| e.to_string())?;
        }
        for line in &lines[start..] {
            v.push_encoded(line).map_err(|e| e.to_string())?;
        }
        v.finish().map_err(|e| e.to_string())
    };
    // `start` entries go one by one first, so the batch begins off a boundary.
    let batched = |lines: &[Vec<u8>], start: usize| -> Result<Summary, String> {
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let mut v =
            LogVerifier::new(&key.verifier(), &cps, Some(&trusted)).map_err(|e| e.to_string())?;
        for line in &refs[..start] {
            v.push_encoded(line).map_err(|e| e.to_string())?;
        }
        v.push_encoded_batch(&refs[start..])
            .map_err(|e| e.to_string())?;
        v.finish().map_err(|e| e.to_string())
    };
    let good = batched(&lines, 0).unwrap();
    assert_eq!(good.entries, BIG);
    assert!(good.trusted_verified);
    assert_eq!(Ok(good.clone()), one_by_one(&lines, 0));
    assert_eq!(
        verify_encoded(
            &lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            &key.verifier(),
            &cps,
            Some(&trusted)
        )
        .unwrap(),
        good
    );
    for start in [0usize, 1, 1000] {
        assert_eq!(batched(&lines, start), Ok(good.clone()), "start {start}");
    }
    type Tamper = (&'static str, fn(&mut Vec<Vec<u8>>, usize));
    let tampers: Vec<Tamper> = vec![
        ("flip a byte", |ls, i| ls[i][3] ^= 1),
        ("delete", |ls, i| {
            ls.remove(i);
        }),
        ("swap", |ls, i| ls.swap(i, i + 1)),
        ("duplicate", |ls, i| {
            let d = ls[i].clone();
            ls.insert(i, d);
        }),
        ("not json", |ls, i| ls[i] = b"garbage".to_vec()),
        ("truncate", |ls, i| ls.truncate(i)),
    ];
    for at in [5usize, 4095, 4096, 5000] {
        for (what, t) in &tampers {
            let mut bad = lines.clone();
            t(&mut bad, at);
            // From the start, so both runs go through the threaded path.
            let want = one_by_one(&bad, 0);
            assert!(want.is_err(), "{what} at {at} not detected");
            assert_eq!(batched(&bad, 0), want, "{what} at {at}");
        }
    }
}
