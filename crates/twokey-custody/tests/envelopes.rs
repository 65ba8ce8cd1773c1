//! The envelope bindings, attacked one field at a time: a share from another
//! request, a replayed share, a share for the wrong recipient, a tampered
//! share, one share alone. Each is refused with an error that names it.

use twokey_custody::envelope::{
    open_all, open_release, open_share, seal_release, seal_share, ReleaseExpectation,
};
use twokey_custody::{shamir, CustodianIdentity, CustodyError, RootSecret, ShareContext};

struct Setup {
    keys: Vec<CustodianIdentity>,
    names: Vec<String>,
    sealed: Vec<Vec<u8>>,
    one_time: CustodianIdentity,
}

const SECRET: &[u8] = b"Root-Password-9f8e7d6c";

fn ctx(s: &Setup, i: usize, generation: u64) -> ShareContext {
    ShareContext {
        secret: "root-prod".into(),
        generation,
        index: (i + 1) as u8,
        custodian: s.names[i].clone(),
        recipient: s.keys[i].recipient().to_string(),
    }
}

fn setup() -> Setup {
    let keys: Vec<_> = (0..3).map(|_| CustodianIdentity::generate()).collect();
    let names = vec![
        "twokey|carol".to_string(),
        "twokey|dave".into(),
        "twokey|erin".into(),
    ];
    let mut s = Setup {
        keys,
        names,
        sealed: vec![],
        one_time: CustodianIdentity::generate(),
    };
    let shares = shamir::split(&RootSecret::new(SECRET.to_vec()), 2, 3).expect("split");
    for (i, sh) in shares.iter().enumerate() {
        let c = ctx(&s, i, 1);
        s.sealed.push(seal_share(sh, &c).expect("seal"));
    }
    s
}

fn expect(s: &Setup, request: &str) -> ReleaseExpectation {
    ReleaseExpectation {
        request: request.into(),
        secret: "root-prod".into(),
        generation: 1,
        custodians: s.names.clone(),
        threshold: 2,
    }
}

fn release(s: &Setup, i: usize, request: &str, to: &CustodianIdentity) -> Vec<u8> {
    let share = open_share(&s.sealed[i], &s.keys[i], &ctx(s, i, 1)).expect("open own share");
    seal_release(
        &share,
        &twokey_custody::ReleaseContext {
            request: request.into(),
            secret: "root-prod".into(),
            generation: 1,
            index: (i + 1) as u8,
            custodian: s.names[i].clone(),
            to: to.recipient().to_string(),
        },
    )
    .expect("seal release")
}

#[test]
fn two_custodians_release_and_the_requester_opens_the_secret() {
    let s = setup();
    let r = vec![
        (
            "release 1".to_string(),
            release(&s, 0, "req-1", &s.one_time),
        ),
        (
            "release 3".to_string(),
            release(&s, 2, "req-1", &s.one_time),
        ),
    ];
    let got = open_all(&r, &s.one_time, &expect(&s, "req-1")).expect("open");
    assert_eq!(got.expose(), SECRET);
}

#[test]
fn one_custodian_alone_opens_nothing() {
    let s = setup();
    let r = vec![(
        "release 1".to_string(),
        release(&s, 0, "req-1", &s.one_time),
    )];
    let e = open_all(&r, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    assert!(
        matches!(e, CustodyError::NotEnough { have: 1, need: 2 }),
        "{e}"
    );
}

#[test]
fn a_share_released_for_another_request_is_refused() {
    let s = setup();
    let r = vec![
        (
            "release 1".to_string(),
            release(&s, 0, "req-OTHER", &s.one_time),
        ),
        (
            "release 2".to_string(),
            release(&s, 1, "req-1", &s.one_time),
        ),
    ];
    let e = open_all(&r, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("request") && msg.contains("req-OTHER") && msg.contains("another request"),
        "{msg}"
    );
}

#[test]
fn a_replayed_share_is_refused() {
    let s = setup();
    let one = release(&s, 0, "req-1", &s.one_time);
    let r = vec![
        ("release 1".to_string(), one.clone()),
        ("release 2".to_string(), one),
    ];
    let e = open_all(&r, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    assert!(matches!(e, CustodyError::Replayed { index: 1 }), "{e}");
    assert!(e.to_string().contains("replayed"));
}

#[test]
fn a_share_of_an_old_sealing_is_refused() {
    let s = setup();
    // The server hands carol her share of generation 1 but says it is generation 2.
    let e = open_share(&s.sealed[0], &s.keys[0], &ctx(&s, 0, 2)).unwrap_err();
    assert!(e.to_string().contains("another sealing"), "{e}");
}

#[test]
fn a_share_for_the_wrong_recipient_is_refused() {
    let s = setup();
    // dave tries carol's share with his identity.
    let e = open_share(&s.sealed[0], &s.keys[1], &ctx(&s, 0, 1)).unwrap_err();
    assert!(matches!(e, CustodyError::NotForThisIdentity { .. }), "{e}");
    // The server claims carol's envelope is dave's share (slot 2, his key).
    let mut lie = ctx(&s, 1, 1);
    lie.index = 2;
    let e = open_share(&s.sealed[0], &s.keys[1], &lie).unwrap_err();
    assert!(matches!(e, CustodyError::NotForThisIdentity { .. }), "{e}");
    // A release made to another key than the requester's one-time key.
    let stranger = CustodianIdentity::generate();
    let r = release(&s, 0, "req-1", &stranger);
    let e = open_release("release 1", &r, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    assert!(matches!(e, CustodyError::NotForThisIdentity { .. }), "{e}");
}

#[test]
fn a_share_in_another_custodians_slot_is_refused() {
    let s = setup();
    // dave's share relabelled as carol's slot in the release context.
    let share = open_share(&s.sealed[1], &s.keys[1], &ctx(&s, 1, 1)).expect("own");
    let forged = seal_release(
        &share,
        &twokey_custody::ReleaseContext {
            request: "req-1".into(),
            secret: "root-prod".into(),
            generation: 1,
            index: 2,
            custodian: "twokey|mallory".into(),
            to: s.one_time.recipient().to_string(),
        },
    )
    .expect("seal");
    let e = open_release("release 2", &forged, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    assert!(e.to_string().contains("another custodian"), "{e}");
}

#[test]
fn a_tampered_share_is_refused() {
    let s = setup();
    for at in [s.sealed[0].len() - 5, s.sealed[0].len() / 2, 40] {
        let mut bad = s.sealed[0].clone();
        bad[at] ^= 0x01;
        let e = open_share(&bad, &s.keys[0], &ctx(&s, 0, 1)).unwrap_err();
        assert!(
            matches!(
                e,
                CustodyError::Tampered { .. } | CustodyError::NotForThisIdentity { .. }
            ),
            "byte {at}: {e}"
        );
    }
    let mut rel = release(&s, 0, "req-1", &s.one_time);
    let n = rel.len();
    rel[n - 3] ^= 0x80;
    let e = open_release("release 1", &rel, &s.one_time, &expect(&s, "req-1")).unwrap_err();
    assert!(matches!(e, CustodyError::Tampered { .. }), "{e}");
    assert!(e.to_string().contains("tampered"));
}

#[test]
fn secrets_do_not_print() {
    let s = RootSecret::from_input("hunter2\n".into());
    assert_eq!(s.expose(), b"hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
    let k = CustodianIdentity::generate();
    assert!(!format!("{k:?}").contains("AGE-SECRET-KEY"));
}
