//! Any text handed to the rule loader either compiles or is reported as
//! unsupported; it never panics. Compiled rules are then run on one record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twokey_sigma::{Config, Event, RuleSet};

const RECORD: &str = r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"},"requestParameters":{"a":[1,"x",{"b":null}]}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let set = RuleSet::from_sources(Config::cloudtrail(), [("fuzz.yml", text)]);
    if let Ok(ev) = Event::parse(RECORD) {
        let mut hits = Vec::new();
        set.matches(&ev, &mut hits);
    }
});
