//! Time as plain numbers: the core never reads a clock.

/// A point in time, Unix milliseconds (UTC).
pub type Millis = i64;

/// Parses a human duration such as `30m`, `1h`, `1h30m`, `90s` into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (use e.g. 30m, 1h, 2h30m)"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("duration {s:?} is too long"))
}

/// A length of time read from configuration (`"30m"`, `"8h"`, `"2h30m"`),
/// parsed when the configuration loads: a bad value is an error that names
/// it, never a silent default. Held in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(i64);

impl ConfigDuration {
    /// A duration of `ms` milliseconds (negative counts as zero).
    pub const fn from_ms(ms: i64) -> Self {
        Self(if ms < 0 { 0 } else { ms })
    }

    /// The duration in milliseconds.
    pub const fn as_ms(self) -> i64 {
        self.0
    }
}

impl std::str::FromStr for ConfigDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Self::from_ms)
    }
}

impl std::fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Formats milliseconds as a short human duration (`1h 30m`).
pub fn format_duration(ms: i64) -> String {
    let secs = (ms.max(0) / 1000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// Deserializes an integer that JSON may write as `9` or `9.0` (JSON
/// Schema's `integer` admits both). A float is taken only where a double is
/// exact (|f| <= 2^53: beyond, `-9223372036854775809` would round into
/// range); anything fractional or out of `T`'s range is refused.
pub fn whole_number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::de::{Deserialize, Error};
    let n = serde_json::Number::deserialize(d)?;
    let v: i128 = match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => u.into(),
        (None, Some(i), _) => i.into(),
        (None, None, Some(f)) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
            f as i128
        }
        _ => return Err(D::Error::custom(format!("{n} is not a whole number"))),
    };
    T::try_from(v).map_err(|_| D::Error::custom(format!("{v} is out of range")))
}

/// RFC 3339 UTC time of Unix milliseconds (`2026-12-02T16:00:00.123Z`);
/// times before the epoch print as the epoch.
pub fn format_time(ms: Millis) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::ConfigDuration;

    #[test]
    fn config_durations_parse_or_say_what_is_wrong() {
        let d: ConfigDuration = "2h30m".parse().unwrap();
        assert_eq!(d.as_ms(), 9_000_000);
        assert_eq!(d.to_string(), "2h 30m");
        let err = "soon".parse::<ConfigDuration>().unwrap_err();
        assert!(err.contains("\"soon\""), "{err}");
    }
}
