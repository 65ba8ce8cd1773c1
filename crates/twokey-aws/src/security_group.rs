//! `aws_security_group`: opens one port of a security group to the
//! requester's own address for the grant, like a bastion that opens only
//! after approval.
//!
//! ```toml
//! [entitlement.target]
//! group_id = "sg-0123456789abcdef0"
//! port = 22                  # or from_port = 8000, to_port = 8010
//! protocol = "tcp"           # tcp (default) or udp
//! addresses = { alice = "203.0.113.7/32", bob = "2001:db8::7" }
//! # optional: region = "eu-west-1", endpoint_url = "...",
//! #           assume_role_arn = "arn:aws:iam::222233334444:role/twokey", account = "222233334444"
//! ```
//!
//! The grant has no address of its own, so each requester's address comes
//! from `addresses` (twokey identity name → address). Each must be a single
//! host: a bare address, `/32` or `/128`. Wider ranges (and so `0.0.0.0/0`)
//! are refused when the target is loaded.
//!
//! **Ownership.** AWS identifies an ingress rule by protocol, ports and
//! source; the description is not part of it, so two grants from the same
//! address share one rule. twokey records the owners in the description, one
//! `twokey:<request id>` token per grant (`twokey:r1 twokey:r2`, at most 255
//! characters). `grant` creates the rule or adds its token; `revoke` removes its
//! token and deletes the rule only when no token remains and no
//! [`GrantSpec::overlapping_active`] grant of the requester needs it. A rule for
//! the same address and port that twokey did not create (its description does
//! not start with `twokey:`) is standing access twokey could never take away:
//! `grant` refuses it with an error naming the rule, and `revoke` leaves it.
//!
//! The gateway needs `ec2:DescribeSecurityGroups`,
//! `ec2:AuthorizeSecurityGroupIngress`, `ec2:RevokeSecurityGroupIngress` and
//! `ec2:UpdateSecurityGroupRuleDescriptionsIngress` on the group.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
use serde::Deserialize;
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError,
};

use crate::client::{aws_error, error_code, parse_target, Connection, Lazy};
use crate::reconcile::{Found, Reconcile};

const KIND: &str = "aws_security_group";
/// Prefix of each owner token in a rule's description.
pub const OWNER_PREFIX: &str = "twokey:";
/// Longest security group rule description AWS accepts.
pub const MAX_DESCRIPTION: usize = 255;

#[derive(Debug, Deserialize)]
struct Raw {
    group_id: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    from_port: Option<u16>,
    #[serde(default)]
    to_port: Option<u16>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    addresses: BTreeMap<String, String>,
    #[serde(flatten)]
    connection: Connection,
}

/// A validated `aws_security_group` target.
#[derive(Debug, Clone)]
pub struct SgConfig {
    /// The security group.
    pub group_id: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// First port of the range.
    pub from_port: u16,
    /// Last port of the range.
    pub to_port: u16,
    /// Identity name → single-host CIDR (`a.b.c.d/32`, `x::y/128`).
    pub addresses: BTreeMap<String, String>,
    /// Where and as whom to call AWS.
    pub connection: Connection,
}

impl SgConfig {
    /// Reads and validates a target table.
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        let raw: Raw = parse_target(
            KIND,
            target,
            &[
                "group_id",
                "port",
                "from_port",
                "to_port",
                "protocol",
                "addresses",
            ],
        )?;
        raw.connection.validate(KIND)?;
        if !raw.group_id.starts_with("sg-") {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `group_id` = {:?} is not a security group id (sg-...)",
                raw.group_id
            )));
        }
        let (from_port, to_port) = match (raw.port, raw.from_port, raw.to_port) {
            (Some(p), None, None) => (p, p),
            (None, Some(f), Some(t)) if f <= t => (f, t),
            (None, Some(f), Some(t)) => {
                return Err(ProviderError::permanent(format!(
                    "{KIND} target: `from_port` {f} is above `to_port` {t}"
                )))
            }
            _ => {
                return Err(ProviderError::permanent(format!(
                    "{KIND} target: give either `port` or both `from_port` and `to_port`"
                )))
            }
        };
        let protocol = raw
            .protocol
            .unwrap_or_else(|| "tcp".into())
            .to_ascii_lowercase();
        if protocol != "tcp" && protocol != "udp" {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `protocol` = {protocol:?} must be \"tcp\" or \"udp\""
            )));
        }
        let mut addresses = BTreeMap::new();
        for (who, a) in raw.addresses {
            let cidr = single_host(&a).map_err(|why| {
                ProviderError::permanent(format!("{KIND} target: address of {who:?}: {why}"))
            })?;
            addresses.insert(who, cidr);
        }
        if addresses.is_empty() {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `addresses` is empty; map each identity name to its single-host address"
            )));
        }
        Ok(Self {
            group_id: raw.group_id,
            protocol,
            from_port,
            to_port,
            addresses,
            connection: raw.connection,
        })
    }
}

/// Checks that `s` is one host (`a.b.c.d`, `a.b.c.d/32`, `x::y`, `x::y/128`)
/// and returns it in the form AWS reports (`a.b.c.d/32`, compressed IPv6/128).
pub fn single_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u8>()
                    .map_err(|_| format!("{s:?} has an invalid prefix length"))?,
            ),
        ),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address"))?;
    let host_len = if ip.is_ipv4() { 32 } else { 128 };
    match len {
        Some(l) if l != host_len => Err(format!(
            "{s:?} is a range of addresses; only a single host (/{host_len}) may be opened"
        )),
        _ if ip.is_unspecified() => Err(format!("{s:?} is the unspecified address, not a host")),
        _ => Ok(format!("{ip}/{host_len}")),
    }
}

/// The request ids recorded in a description, or `None` if twokey does not
/// own the rule.
pub fn owners(description: Option<&str>) -> Option<Vec<String>> {
    let d = description?.trim();
    if !d.starts_with(OWNER_PREFIX) {
        return None;
    }
    Some(
        d.split_whitespace()
            .filter_map(|t| t.strip_prefix(OWNER_PREFIX))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// The description recording `ids` as owners.
pub fn description(ids: &[String]) -> Result<String, ProviderError> {
    let d = ids
        .iter()
        .map(|i| format!("{OWNER_PREFIX}{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    if d.len() > MAX_DESCRIPTION {
        return Err(ProviderError::permanent(format!(
            "{KIND}: {} overlapping grants share one rule; their owner list does not fit the \
             {MAX_DESCRIPTION}-character rule description",
            ids.len()
        )));
    }
    Ok(d)
}

/// One ingress rule on the target's protocol and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    cidr: String,
    description: Option<String>,
}

/// Opens and closes the port; see the [module docs](self).
#[derive(Debug)]
pub struct SecurityGroupProvider {
    config: SgConfig,
    client: Lazy<aws_sdk_ec2::Client>,
}

/// Builds a [`SecurityGroupProvider`] from a target table.
pub fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(SecurityGroupProvider::new(SgConfig::from_target(
        target,
    )?)))
}

impl SecurityGroupProvider {
    /// A provider for one validated target.
    pub fn new(config: SgConfig) -> Self {
        Self {
            config,
            client: Lazy::default(),
        }
    }

    /// Builds from a target table, for callers that also want [`Reconcile`].
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        Ok(Self::new(SgConfig::from_target(target)?))
    }

    async fn client(&self) -> &aws_sdk_ec2::Client {
        self.client
            .get(|| async { aws_sdk_ec2::Client::new(&self.config.connection.load().await) })
            .await
    }

    fn what(&self) -> String {
        format!(
            "security group {} ({} {})",
            self.config.group_id,
            self.config.protocol,
            self.ports()
        )
    }

    fn ports(&self) -> String {
        if self.config.from_port == self.config.to_port {
            format!("port {}", self.config.from_port)
        } else {
            format!("ports {}-{}", self.config.from_port, self.config.to_port)
        }
    }

    fn address_of(&self, spec: &GrantSpec) -> Result<&str, ProviderError> {
        self.config
            .addresses
            .get(&spec.requester_name)
            .map(String::as_str)
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{KIND}: no address for {:?} in the target's `addresses`",
                    spec.requester_name
                ))
            })
    }

    /// The permission for one source, with an optional description.
    fn permission(&self, cidr: &str, description: Option<String>) -> IpPermission {
        let b = IpPermission::builder()
            .ip_protocol(&self.config.protocol)
            .from_port(i32::from(self.config.from_port))
            .to_port(i32::from(self.config.to_port));
        if cidr.contains(':') {
            b.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(cidr)
                    .set_description(description)
                    .build(),
            )
            .build()
        } else {
            b.ip_ranges(
                IpRange::builder()
                    .cidr_ip(cidr)
                    .set_description(description)
                    .build(),
            )
            .build()
        }
    }

    /// The group's ingress rules on the target's protocol and ports.
    async fn rules(&self) -> Result<Vec<Rule>, ProviderError> {
        let out = self
            .client()
            .await
            .describe_security_groups()
            .group_ids(&self.config.group_id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeSecurityGroups", &self.what(), e))?;
        let mut rules = Vec::new();
        for sg in out.security_groups() {
            for p in sg.ip_permissions() {
                if p.ip_protocol() != Some(self.config.protocol.as_str())
                    || p.from_port() != Some(i32::from(self.config.from_port))
                    || p.to_port() != Some(i32::from(self.config.to_port))
                {
                    continue;
                }
                for r in p.ip_ranges() {
                    if let Some(c) = r.cidr_ip() {
                        rules.push(Rule {
                            cidr: c.to_string(),
                            description: r.description().map(str::to_string),
                        });
                    }
                }
                for r in p.ipv6_ranges() {
                    if let Some(c) = r.cidr_ipv6() {
                        rules.push(Rule {
                            cidr: single_host(c).unwrap_or_else(|_| c.to_string()),
                            description: r.description().map(str::to_string),
                        });
                    }
                }
            }
        }
        Ok(rules)
    }

    async fn set_description(&self, cidr: &str, ids: &[String]) -> Result<(), ProviderError> {
        self.client()
            .await
            .update_security_group_rule_descriptions_ingress()
            .group_id(&self.config.group_id)
            .ip_permissions(self.permission(cidr, Some(description(ids)?)))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "UpdateSecurityGroupRuleDescriptionsIngress",
                    &self.what(),
                    e,
                )
            })?;
        Ok(())
    }

    async fn delete_rule(&self, cidr: &str) -> Result<(), ProviderError> {
        match self
            .client()
            .await
            .revoke_security_group_ingress()
            .group_id(&self.config.group_id)
            .ip_permissions(self.permission(cidr, None))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("InvalidPermission.NotFound") => Ok(()),
            Err(e) => Err(aws_error("RevokeSecurityGroupIngress", &self.what(), e)),
        }
    }

    /// Removes `id` from the rule for `cidr`, deleting the rule when nobody
    /// else (`keep`) needs it.
    async fn release(&self, rule: &Rule, id: &str, keep: &[String]) -> Result<(), ProviderError> {
        let Some(mut ids) = owners(rule.description.as_deref()) else {
            return Ok(());
        };
        ids.retain(|i| i != id);
        for k in keep {
            if !ids.contains(k) {
                ids.push(k.clone());
            }
        }
        if ids.is_empty() {
            self.delete_rule(&rule.cidr).await
        } else {
            self.set_description(&rule.cidr, &ids).await
        }
    }
}

#[async_trait]
impl Provider for SecurityGroupProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        let cidr = self.address_of(spec)?.to_string();
        let detail = format!("{} open from {cidr}", self.what());
        // A concurrent grant from the same address may create the rule between
        // our look and our write; look again then.
        for _ in 0..3 {
            let existing = self.rules().await?.into_iter().find(|r| r.cidr == cidr);
            match existing {
                None => {
                    let res = self
                        .client()
                        .await
                        .authorize_security_group_ingress()
                        .group_id(&self.config.group_id)
                        .ip_permissions(
                            self.permission(&cidr, Some(description(std::slice::from_ref(&spec.request_id))?)),
                        )
                        .send()
                        .await;
                    match res {
                        Ok(_) => return Ok(GrantOutcome { secret: None, detail }),
                        Err(e) if error_code(&e) == Some("InvalidPermission.Duplicate") => continue,
                        Err(e) => {
                            return Err(aws_error("AuthorizeSecurityGroupIngress", &self.what(), e))
                        }
                    }
                }
                Some(rule) => match owners(rule.description.as_deref()) {
                    Some(ids) if ids.contains(&spec.request_id) => {
                        return Ok(GrantOutcome { secret: None, detail })
                    }
                    Some(mut ids) => {
                        ids.push(spec.request_id.clone());
                        self.set_description(&cidr, &ids).await?;
                        return Ok(GrantOutcome { secret: None, detail });
                    }
                    None => {
                        return Err(ProviderError::permanent(format!(
                            "{}: a rule twokey does not manage already allows {cidr} (description {:?}); \
                             twokey will not share access it cannot take away: remove that rule first",
                            self.what(),
                            rule.description.unwrap_or_default()
                        )))
                    }
                },
            }
        }
        Err(ProviderError::retryable(format!(
            "{}: the rule for {cidr} kept changing while granting; will retry",
            self.what()
        )))
    }

    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        let own_cidr = self.config.addresses.get(&spec.requester_name);
        for rule in self.rules().await? {
            let Some(ids) = owners(rule.description.as_deref()) else {
                continue;
            };
            if !ids.contains(&spec.request_id) {
                continue;
            }
            // Overlapping grants of the same person from the same address
            // share this rule even if their token was lost to a race.
            let keep: &[String] = if own_cidr == Some(&rule.cidr) {
                &spec.overlapping_active
            } else {
                &[]
            };
            self.release(&rule, &spec.request_id, keep).await?;
        }
        Ok(())
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        let present = self.rules().await?.iter().any(|r| {
            owners(r.description.as_deref()).is_some_and(|ids| ids.contains(&spec.request_id))
        });
        Ok(Presence::of(present))
    }

    fn reconciler(&self) -> Option<&dyn Reconcile> {
        Some(self)
    }
}

#[async_trait]
impl Reconcile for SecurityGroupProvider {
    /// Rules on the target's port whose description starts with `twokey:`.
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError> {
        let mut found = Vec::new();
        for r in self.rules().await? {
            if let Some(ids) = owners(r.description.as_deref()) {
                let requester = self
                    .config
                    .addresses
                    .iter()
                    .find(|(_, c)| **c == r.cidr)
                    .map(|(who, _)| who.clone());
                found.push(Found {
                    request_ids: ids,
                    requester,
                    resource: r.cidr,
                });
            }
        }
        Ok(found)
    }

    /// Deletes the twokey-owned rule for the found address.
    async fn remove(&self, found: &Found) -> Result<(), ProviderError> {
        let rule = self
            .rules()
            .await?
            .into_iter()
            .find(|r| r.cidr == found.resource && owners(r.description.as_deref()).is_some());
        match rule {
            Some(r) => self.delete_rule(&r.cidr).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_hosts() {
        assert_eq!(single_host("203.0.113.7").as_deref(), Ok("203.0.113.7/32"));
        assert_eq!(
            single_host("203.0.113.7/32").as_deref(),
            Ok("203.0.113.7/32")
        );
        assert_eq!(
            single_host("2001:DB8:0::7/128").as_deref(),
            Ok("2001:db8::7/128")
        );
        for bad in [
            "0.0.0.0/0",
            "203.0.113.0/24",
            "::/0",
            "2001:db8::/64",
            "0.0.0.0",
            "x/32",
            "1.2.3.4/33",
        ] {
            assert!(single_host(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn owner_tokens() {
        assert_eq!(
            owners(Some("twokey:a twokey:b")),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(owners(Some("office vpn")), None);
        assert_eq!(owners(None), None);
        assert_eq!(
            description(&["a".into(), "b".into()]).expect("fits"),
            "twokey:a twokey:b"
        );
        let many: Vec<String> = (0..20).map(|i| format!("request-{i:020}")).collect();
        assert!(description(&many).is_err());
    }

    #[test]
    fn wide_ranges_are_refused_when_loading() {
        let t: toml::Table = toml::from_str(
            r#"group_id = "sg-1"
port = 22
addresses = { alice = "0.0.0.0/0" }"#,
        )
        .expect("toml");
        let e = SgConfig::from_target(&t).expect_err("wide range");
        assert!(
            e.message.contains("alice") && e.message.contains("single host"),
            "{}",
            e.message
        );
        let t: toml::Table = toml::from_str(
            r#"group_id = "sg-1"
prot = 22
addresses = { alice = "1.2.3.4" }"#,
        )
        .expect("toml");
        let e = SgConfig::from_target(&t).expect_err("typo");
        assert!(
            e.message.contains("unknown setting `prot`"),
            "{}",
            e.message
        );
    }
}
