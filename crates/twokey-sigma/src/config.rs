//! Engine configuration: field mapping, placeholder values, accepted log
//! sources.

use std::collections::HashMap;

/// Where a Sigma field name is read from in a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedField {
    /// A dotted path in the record.
    Path(String),
    /// `success` when the record has no `errorCode` (or a null one), else
    /// `failure`: the outcome field that raw CloudTrail lacks.
    Outcome,
}

/// Configuration shared by every rule an engine loads.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sigma field name → where to read it. Names not listed are read as
    /// dotted paths unchanged.
    pub fields: HashMap<String, MappedField>,
    /// Values for `%name%` placeholders used with the `expand` modifier.
    pub placeholders: HashMap<String, Vec<String>>,
    /// Log sources this engine runs, as (product, service); a rule naming
    /// another product or service is reported as unsupported. Empty accepts
    /// every rule.
    pub logsources: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config::cloudtrail()
    }
}

impl Config {
    /// The mapping for raw CloudTrail records: `src_ip` → `sourceIPAddress`,
    /// `type` → `userIdentity.type`, `status` → outcome (derived from
    /// `errorCode`), `dst_ip`/`user` kept for generic rules; accepts rules for
    /// `product: aws`, `service: cloudtrail`.
    pub fn cloudtrail() -> Self {
        let fields = [
            ("src_ip", MappedField::Path("sourceIPAddress".into())),
            ("type", MappedField::Path("userIdentity.type".into())),
            ("user_agent", MappedField::Path("userAgent".into())),
            ("status", MappedField::Outcome),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Config {
            fields,
            placeholders: HashMap::new(),
            logsources: vec![("aws".into(), "cloudtrail".into())],
        }
    }

    /// Reads a configuration from YAML:
    ///
    /// ```yaml
    /// fields:            # Sigma name: dotted path, or "@outcome"
    ///   src_ip: sourceIPAddress
    ///   status: "@outcome"
    /// placeholders:
    ///   admins: [alice, bob]
    /// logsources:        # product/service pairs; [] accepts all
    ///   - aws/cloudtrail
    /// ```
    ///
    /// Keys left out keep the CloudTrail defaults.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            fields: Option<HashMap<String, String>>,
            #[serde(default)]
            placeholders: HashMap<String, Vec<String>>,
            #[serde(default)]
            logsources: Option<Vec<String>>,
        }
        let raw: Raw = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
        let mut cfg = Config::cloudtrail();
        if let Some(fields) = raw.fields {
            cfg.fields = fields
                .into_iter()
                .map(|(k, v)| {
                    let m = if v == "@outcome" {
                        MappedField::Outcome
                    } else {
                        MappedField::Path(v)
                    };
                    (k, m)
                })
                .collect();
        }
        cfg.placeholders = raw.placeholders;
        if let Some(ls) = raw.logsources {
            cfg.logsources = ls
                .into_iter()
                .map(|s| match s.split_once('/') {
                    Some((p, sv)) => Ok((p.to_string(), sv.to_string())),
                    None => Err(format!("logsource {s:?} is not product/service")),
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(cfg)
    }
}
