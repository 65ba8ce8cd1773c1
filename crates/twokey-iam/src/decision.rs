//! The answer: allowed, denied (explicitly or implicitly), or allowed only
//! if conditions on unknown context hold; with the deciding statements.

use std::fmt;

use crate::condition::Operator;

/// The kinds of policy AWS evaluates for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Service control policy (the principal's OU chain).
    Scp,
    /// Resource control policy (the resource's OU chain).
    Rcp,
    /// Identity-based (inline or managed) policy of the principal.
    Identity,
    /// Resource-based policy (bucket policy, role trust, key policy, ...).
    Resource,
    /// Permissions boundary of the principal.
    Boundary,
    /// Session policy of the role or federated session.
    Session,
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Scp => "scp",
            PolicyKind::Rcp => "rcp",
            PolicyKind::Identity => "identity",
            PolicyKind::Resource => "resource",
            PolicyKind::Boundary => "boundary",
            PolicyKind::Session => "session",
        })
    }
}

/// One statement of one policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatementRef {
    /// The kind of policy it is in.
    pub kind: PolicyKind,
    /// The policy's id (its name or ARN as the caller gave it).
    pub policy: String,
    /// Its index in the policy's statements.
    pub index: usize,
    /// Its `Sid`, if any.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} Statement[{}]", self.kind, self.policy, self.index)?;
        if let Some(sid) = &self.sid {
            write!(f, " ({sid})")?;
        }
        Ok(())
    }
}

/// What an unknown part of the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// A condition of a statement: `operator key values`.
    Condition {
        /// The operator.
        operator: Operator,
        /// The context key.
        key: String,
        /// The condition's values.
        values: Vec<String>,
        /// Where it is written.
        statement: StatementRef,
    },
    /// A `Resource` pattern with a policy variable whose key is unknown.
    Resource {
        /// The pattern as written.
        pattern: String,
        /// Where it is written.
        statement: StatementRef,
    },
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Condition {
                operator,
                key,
                values,
                statement,
            } => write!(f, "{operator} {key} {values:?} [{statement}]"),
            Requirement::Resource { pattern, statement } => {
                write!(f, "resource matches {pattern:?} [{statement}]")
            }
        }
    }
}

/// A boolean formula over requirements on unknown context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formula {
    /// Holds whatever the unknown context is.
    True,
    /// Never holds.
    False,
    /// Holds when the requirement does.
    Leaf(Requirement),
    /// Holds when the inner formula does not.
    Not(Box<Formula>),
    /// Holds when all do.
    All(Vec<Formula>),
    /// Holds when any does.
    Any(Vec<Formula>),
}

impl Formula {
    /// `a AND b`, simplified.
    pub fn and(self, other: Formula) -> Formula {
        match (self, other) {
            (Formula::False, _) | (_, Formula::False) => Formula::False,
            (Formula::True, x) | (x, Formula::True) => x,
            (Formula::All(mut a), Formula::All(b)) => {
                a.extend(b);
                Formula::All(a)
            }
            (Formula::All(mut a), x) | (x, Formula::All(mut a)) => {
                a.push(x);
                Formula::All(a)
            }
            (a, b) => Formula::All(vec![a, b]),
        }
    }

    /// `a OR b`, simplified.
    pub fn or(self, other: Formula) -> Formula {
        match (self, other) {
            (Formula::True, _) | (_, Formula::True) => Formula::True,
            (Formula::False, x) | (x, Formula::False) => x,
            (Formula::Any(mut a), Formula::Any(b)) => {
                a.extend(b);
                Formula::Any(a)
            }
            (Formula::Any(mut a), x) | (x, Formula::Any(mut a)) => {
                a.push(x);
                Formula::Any(a)
            }
            (a, b) => Formula::Any(vec![a, b]),
        }
    }

    /// `NOT a`, simplified.
    pub fn negate(self) -> Formula {
        match self {
            Formula::True => Formula::False,
            Formula::False => Formula::True,
            Formula::Not(x) => *x,
            x => Formula::Not(Box::new(x)),
        }
    }

    /// All of `items` (true when empty).
    pub fn all(items: impl IntoIterator<Item = Formula>) -> Formula {
        items.into_iter().fold(Formula::True, Formula::and)
    }

    /// Any of `items` (false when empty).
    pub fn any(items: impl IntoIterator<Item = Formula>) -> Formula {
        items.into_iter().fold(Formula::False, Formula::or)
    }

    /// Every requirement the formula mentions.
    pub fn requirements(&self) -> Vec<&Requirement> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Requirement>) {
        match self {
            Formula::True | Formula::False => {}
            Formula::Leaf(r) => out.push(r),
            Formula::Not(x) => x.collect(out),
            Formula::All(v) | Formula::Any(v) => v.iter().for_each(|x| x.collect(out)),
        }
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, v: &[Formula], sep: &str| {
            f.write_str("(")?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(")")
        };
        match self {
            Formula::True => f.write_str("true"),
            Formula::False => f.write_str("false"),
            Formula::Leaf(r) => write!(f, "{r}"),
            Formula::Not(x) => write!(f, "NOT {x}"),
            Formula::All(v) => join(f, v, " AND "),
            Formula::Any(v) => join(f, v, " OR "),
        }
    }
}

/// Why a request is implicitly denied: the layers that had no allow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gap {
    /// This SCP level (root, OU, account) allows nothing that matches.
    Scp(String),
    /// No identity policy allows it (and no resource policy does in its stead).
    Identity,
    /// The resource policy does not allow it, and must (cross-account, role
    /// trust, KMS key policy).
    Resource,
    /// The permissions boundary does not allow it.
    Boundary,
    /// The session policy does not allow it.
    Session,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Scp(level) => write!(f, "no SCP at {level} allows it"),
            Gap::Identity => f.write_str("no identity policy allows it"),
            Gap::Resource => f.write_str("the resource policy does not allow it"),
            Gap::Boundary => f.write_str("the permissions boundary does not allow it"),
            Gap::Session => f.write_str("the session policy does not allow it"),
        }
    }
}

/// The evaluator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `by` are the allow statements that apply.
    Allowed {
        /// The deciding allow statements.
        by: Vec<StatementRef>,
    },
    /// A deny statement applies.
    ExplicitDeny {
        /// The deny statements that apply.
        by: Vec<StatementRef>,
    },
    /// Nothing allows it.
    ImplicitDeny {
        /// The layers that had no allow.
        gaps: Vec<Gap>,
    },
    /// Allowed exactly when `when` holds: it depends on context keys that
    /// are not known (never a silent yes or no).
    AllowedIf {
        /// The requirements on the unknown context (deny statements appear
        /// negated: "allowed if NOT ...").
        when: Formula,
        /// The allow statements that apply or may apply.
        by: Vec<StatementRef>,
    },
}

impl Decision {
    /// A short name: `Allowed`, `ExplicitDeny`, `ImplicitDeny`, `AllowedIf`.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Allowed { .. } => "Allowed",
            Decision::ExplicitDeny { .. } => "ExplicitDeny",
            Decision::ImplicitDeny { .. } => "ImplicitDeny",
            Decision::AllowedIf { .. } => "AllowedIf",
        }
    }

    /// Whether it is allowed outright.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refs = |f: &mut fmt::Formatter<'_>, by: &[StatementRef]| {
            for s in by {
                write!(f, "\n  by {s}")?;
            }
            Ok(())
        };
        match self {
            Decision::Allowed { by } => {
                f.write_str("Allowed")?;
                refs(f, by)
            }
            Decision::ExplicitDeny { by } => {
                f.write_str("ExplicitDeny")?;
                refs(f, by)
            }
            Decision::ImplicitDeny { gaps } => {
                f.write_str("ImplicitDeny")?;
                for g in gaps {
                    write!(f, "\n  {g}")?;
                }
                Ok(())
            }
            Decision::AllowedIf { when, by } => {
                write!(f, "AllowedIf {when}")?;
                refs(f, by)
            }
        }
    }
}
