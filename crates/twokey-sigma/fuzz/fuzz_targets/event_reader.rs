//! Any bytes handed to the event reader are read or rejected without a
//! panic, and every lookup on an accepted record terminates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twokey_sigma::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ev) = Event::parse(text) {
        let paths: [&[Box<str>]; 3] = [
            &["eventName".into()],
            &["userIdentity".into(), "type".into()],
            &["requestParameters".into(), "a".into(), "b".into()],
        ];
        for p in paths {
            ev.visit(p, &mut |v| {
                let _ = v.scalar_text();
                v.any_scalar(&mut |_| false)
            });
        }
        ev.any_scalar(&mut |_| false);
    }
    let _ = twokey_sigma::json::parse_document(text);
});
