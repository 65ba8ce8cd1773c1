//! A Sigma rule engine for AWS CloudTrail.
//!
//! Rules are parsed from YAML ([`RuleSet::from_sources`] or
//! [`RuleSetBuilder`]), compiled into matcher trees, and indexed by the
//! `eventName` values they require, so that an event is only tried against
//! the rules that can match it. Events are read lazily and without copying
//! ([`Event::parse`]). Rules the engine cannot run are kept, with the reason,
//! in [`RuleSet::unsupported`]; none is dropped silently.
//!
//! The crate does no IO: callers hand it rule text and event text.
//!
//! ```
//! use twokey_sigma::{Config, Event, RuleSet};
//!
//! let rule = r#"
//! title: CloudTrail logging stopped
//! id: 4db60cc0-36fb-42b7-9b58-a5b53019fb74
//! logsource: {product: aws, service: cloudtrail}
//! detection:
//!   selection:
//!     eventSource: cloudtrail.amazonaws.com
//!     eventName: [StopLogging, DeleteTrail]
//!   condition: selection
//! level: high
//! "#;
//! let set = RuleSet::from_sources(Config::cloudtrail(), [("stop.yml", rule)]);
//! assert!(set.unsupported().is_empty());
//! let ev = Event::parse(r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging"}"#).unwrap();
//! let mut hits = Vec::new();
//! set.matches(&ev, &mut hits);
//! assert_eq!(set.rules()[hits[0]].meta.title, "CloudTrail logging stopped");
//! ```
#![warn(missing_docs)]

pub mod condition;
pub mod config;
pub mod correlation;
mod detection;
pub mod json;
mod pattern;
mod rules;

pub use config::{Config, MappedField};
pub use correlation::{CorrelationDef, CorrelationHit, CorrelationKind, Correlator};
pub use json::{Event, JsonError, JsonValue};
pub use rules::{Rule, RuleMeta, RuleSet, RuleSetBuilder, Unsupported};
