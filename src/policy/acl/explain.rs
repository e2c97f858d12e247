//! The long form of a decision: the deciding rule with its file, line and text, or, when no rule
//! matched, the nearest rules and why each one missed. This is what `mqtt-policy check` prints and what
//! audit records carry. Building it allocates; it is made only for denials and on request.

use std::fmt;

use serde::Serialize;

use super::policy::Policy;
use super::rule::{Permission, RuleList};
use crate::policy::decision::{Access, ClientRef, Decision, Reason, RuleId, Verdict};
use crate::policy::semantics::{substitute_whole_levels, Semantics};
use crate::policy::topic;

/// How many near misses an explanation lists at most.
pub const MAX_NEAR_MISSES: usize = 3;

/// A rule as shown to people and machines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The acl file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The line as written.
    pub text: String,
    /// `anonymous`, `user` or `pattern`.
    pub list: &'static str,
    /// For a `user` block: whose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What the rule grants.
    pub permission: Permission,
}

impl RuleRef {
    /// Describes rule `id` of `policy`.
    pub fn new(policy: &Policy, id: RuleId) -> RuleRef {
        let rule = policy.rule(id);
        let (list, user) = match &rule.list {
            RuleList::Anonymous => ("anonymous", None),
            RuleList::User(name) => ("user", Some(name.clone())),
            RuleList::Pattern => ("pattern", None),
        };
        RuleRef {
            file: policy.path().to_owned(),
            line: rule.line,
            text: rule.text.clone(),
            list,
            user,
            permission: rule.permission,
        }
    }

    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The reason of a decision, spelled out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasonDetail {
    /// This rule decided.
    Rule {
        /// The rule.
        rule: RuleRef,
    },
    /// No rule matched with the access asked for.
    NoRuleMatched,
    /// The acl file has no rules for this client and no patterns.
    NoRulesForClient,
    /// Username with `+`/`#` while patterns exist.
    DangerousUsername,
    /// Client id with `+`/`#` while patterns exist.
    DangerousClientId,
    /// `$SYS` writes are always denied.
    SysWrite,
    /// `$share` topics cannot be read or written.
    SharedTopic,
    /// Not a valid concrete topic.
    InvalidTopic,
    /// Not a valid filter.
    InvalidFilter,
    /// Unsubscribing is never checked.
    UnsubscribeUnchecked,
    /// Subscribing unchecked, as Mosquitto's acl_file (`refuse_subscriptions false`).
    SubscribeUnchecked,
    /// Subscription granted: this rule may let messages through (reads are checked per message).
    SubscriptionMayDeliver {
        /// The rule.
        rule: RuleRef,
    },
    /// Subscription refused: no readable topic matches the filter.
    SubscriptionNeverDelivers,
    /// Subscription refused: this deny rule covers the whole filter.
    SubscriptionDeniedBy {
        /// The rule.
        rule: RuleRef,
    },
    /// Subscription refused by the strict check (`serve --subscribe strict`): not every topic the
    /// filter matches is readable.
    SubscriptionNotWhollyReadable,
}

impl ReasonDetail {
    /// Spells out `reason`.
    pub fn new(policy: &Policy, reason: Reason) -> ReasonDetail {
        match reason {
            Reason::Rule(id) => ReasonDetail::Rule {
                rule: RuleRef::new(policy, id),
            },
            Reason::NoRuleMatched => ReasonDetail::NoRuleMatched,
            Reason::NoRulesForClient => ReasonDetail::NoRulesForClient,
            Reason::DangerousUsername => ReasonDetail::DangerousUsername,
            Reason::DangerousClientId => ReasonDetail::DangerousClientId,
            Reason::SysWrite => ReasonDetail::SysWrite,
            Reason::SharedTopic => ReasonDetail::SharedTopic,
            Reason::InvalidTopic => ReasonDetail::InvalidTopic,
            Reason::InvalidFilter => ReasonDetail::InvalidFilter,
            Reason::UnsubscribeUnchecked => ReasonDetail::UnsubscribeUnchecked,
            Reason::SubscribeUnchecked => ReasonDetail::SubscribeUnchecked,
            Reason::SubscriptionMayDeliver(id) => ReasonDetail::SubscriptionMayDeliver {
                rule: RuleRef::new(policy, id),
            },
            Reason::SubscriptionNeverDelivers => ReasonDetail::SubscriptionNeverDelivers,
            Reason::SubscriptionDeniedBy(id) => ReasonDetail::SubscriptionDeniedBy {
                rule: RuleRef::new(policy, id),
            },
            Reason::SubscriptionNotWhollyReadable => ReasonDetail::SubscriptionNotWhollyReadable,
        }
    }

    /// The deciding rule, if one decided.
    pub fn rule(&self) -> Option<&RuleRef> {
        match self {
            ReasonDetail::Rule { rule }
            | ReasonDetail::SubscriptionMayDeliver { rule }
            | ReasonDetail::SubscriptionDeniedBy { rule } => Some(rule),
            _ => None,
        }
    }
}

impl fmt::Display for ReasonDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReasonDetail::Rule { rule } => {
                write!(f, "rule {} `{}`", rule.location(), rule.text)?;
                match &rule.user {
                    Some(user) => write!(f, " (user {user}'s list)"),
                    None => write!(f, " ({} list)", rule.list),
                }
            }
            ReasonDetail::NoRuleMatched => write!(f, "no rule matched"),
            ReasonDetail::NoRulesForClient => write!(
                f,
                "the acl file has no rules for this client and no patterns (an acl file without rules denies everything)"
            ),
            ReasonDetail::DangerousUsername => {
                write!(f, "the username contains `+` or `#`, which is denied when patterns exist (CVE-2017-7650)")
            }
            ReasonDetail::DangerousClientId => {
                write!(f, "the client id contains `+` or `#`, which is denied when patterns exist (CVE-2017-7650)")
            }
            ReasonDetail::SysWrite => write!(f, "publishing to $SYS topics is always denied"),
            ReasonDetail::SharedTopic => write!(f, "$share topics can only be subscribed to, never read or written"),
            ReasonDetail::InvalidTopic => write!(f, "not a valid topic (empty, or contains `+`/`#`)"),
            ReasonDetail::InvalidFilter => write!(f, "not a valid topic filter"),
            ReasonDetail::UnsubscribeUnchecked => write!(f, "unsubscribing is always allowed"),
            ReasonDetail::SubscribeUnchecked => write!(
                f,
                "subscriptions are not checked (refuse_subscriptions false, as Mosquitto's acl_file); reads are"
            ),
            ReasonDetail::SubscriptionMayDeliver { rule } => write!(
                f,
                "rule {} `{}` may let matching messages through (each message is still checked for read)",
                rule.location(),
                rule.text
            ),
            ReasonDetail::SubscriptionNeverDelivers => {
                write!(f, "no rule lets this client read any topic the filter matches")
            }
            ReasonDetail::SubscriptionDeniedBy { rule } => write!(
                f,
                "rule {} `{}` denies every topic the filter matches",
                rule.location(),
                rule.text
            ),
            ReasonDetail::SubscriptionNotWhollyReadable => write!(
                f,
                "strict subscription check: this broker authorizes the subscription once, and not every \
                 topic the filter matches is readable by this client (some are denied, or no rule is \
                 shown to cover them)"
            ),
        }
    }
}

/// Why a rule did not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Miss {
    /// The filter and the topic have different numbers of levels.
    LevelCount {
        /// Levels of the filter (after substitution); with `at_least`, the minimum it needs.
        filter_levels: usize,
        /// Levels of the topic.
        topic_levels: usize,
        /// The filter ends in `#` and needs at least `filter_levels - 1` levels.
        at_least: bool,
    },
    /// A level differs.
    LevelDiffers {
        /// 1-based level number.
        level: usize,
        /// What the filter has there.
        expected: String,
        /// What the topic has there.
        found: String,
    },
    /// The topic starts with `$` and the filter does not: wildcards never match `$` topics.
    DollarTopic,
    /// The filter starts with `$` and the topic does not.
    DollarFilter,
    /// The pattern uses `%u` and the client has no username.
    NoUsername,
    /// Mosquitto 2.1: a `%u`/`%c` level of the pattern cannot be filled by this client's username or
    /// client id (empty, containing `/`, or starting with `$` in the first level).
    NotAWholeLevel,
    /// The filter matches but the rule grants a different access.
    AccessNotGranted {
        /// What the rule grants.
        permission: Permission,
    },
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::LevelCount {
                filter_levels,
                topic_levels,
                at_least: false,
            } => {
                write!(
                    f,
                    "needs {filter_levels} levels and the topic has {topic_levels}"
                )
            }
            Miss::LevelCount {
                filter_levels,
                topic_levels,
                at_least: true,
            } => {
                write!(
                    f,
                    "needs at least {} levels and the topic has {topic_levels}",
                    filter_levels - 1
                )
            }
            Miss::LevelDiffers {
                level,
                expected,
                found,
            } => {
                write!(
                    f,
                    "level {level} must be {expected:?} and the topic has {found:?}"
                )
            }
            Miss::DollarTopic => write!(
                f,
                "the topic starts with `$`, which only filters starting with `$` match"
            ),
            Miss::DollarFilter => write!(f, "the filter starts with `$` and the topic does not"),
            Miss::NoUsername => write!(f, "the pattern uses %u and the client has no username"),
            Miss::NotAWholeLevel => write!(
                f,
                "on Mosquitto 2.1 a %u or %c level matches only a username or client id that is not empty, \
                 has no `/` and, in the first level, does not start with `$`"
            ),
            Miss::AccessNotGranted { permission } => {
                write!(
                    f,
                    "the filter matches, but the rule grants {} only",
                    permission.as_str()
                )
            }
        }
    }
}

/// A rule that applies to the client but did not match, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// The rule.
    pub rule: RuleRef,
    /// The filter after `%u`/`%c` substitution (equal to the rule's filter for `topic` lines).
    pub effective_filter: String,
    /// Why it missed.
    pub why: Miss,
}

/// A decision, spelled out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Allow or deny.
    pub verdict: Verdict,
    /// What was asked.
    pub access: Access,
    /// The topic or filter.
    pub topic: String,
    /// The username (`null` for anonymous).
    pub username: Option<String>,
    /// The client id.
    pub client_id: String,
    /// Why.
    pub reason: ReasonDetail,
    /// When no rule matched: the nearest rules and why each missed (at most [`MAX_NEAR_MISSES`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_misses: Vec<NearMiss>,
}

/// Why `filter` does not match `topic_name`, or `None` if it does.
pub fn why_no_match(filter: &str, topic_name: &str) -> Option<Miss> {
    if topic::matches(filter, topic_name) {
        return None;
    }
    if topic_name.starts_with('$') && !filter.starts_with('$') {
        return Some(Miss::DollarTopic);
    }
    if filter.starts_with('$') && !topic_name.starts_with('$') {
        return Some(Miss::DollarFilter);
    }
    let filter_levels = topic::level_count(filter);
    let topic_levels = topic::level_count(topic_name);
    let ends_with_hash = filter == "#" || filter.ends_with("/#");
    let count_miss = if ends_with_hash {
        topic_levels + 1 < filter_levels
    } else {
        topic_levels != filter_levels
    };
    if count_miss {
        return Some(Miss::LevelCount {
            filter_levels,
            topic_levels,
            at_least: ends_with_hash,
        });
    }
    for (i, (f, t)) in filter.split('/').zip(topic_name.split('/')).enumerate() {
        if f == "#" {
            break;
        }
        if f != "+" && f != t {
            return Some(Miss::LevelDiffers {
                level: i + 1,
                expected: f.to_owned(),
                found: t.to_owned(),
            });
        }
    }
    // Only invalid topics get here.
    Some(Miss::LevelDiffers {
        level: 1,
        expected: filter.to_owned(),
        found: topic_name.to_owned(),
    })
}

/// How close a miss is: higher is nearer.
fn closeness(filter: &str, topic_name: &str, miss: &Miss) -> usize {
    let shared = filter
        .split('/')
        .zip(topic_name.split('/'))
        .take_while(|(f, t)| *f == "+" || *f == "#" || f == t)
        .count();
    match miss {
        Miss::AccessNotGranted { .. } => 1000,
        Miss::LevelCount { .. } | Miss::LevelDiffers { .. } => 10 + shared,
        Miss::DollarTopic | Miss::DollarFilter | Miss::NoUsername | Miss::NotAWholeLevel => 0,
    }
}

impl Policy {
    /// Decides and spells the decision out, with near misses when no rule matched.
    pub fn explain(&self, client: ClientRef<'_>, topic_name: &str, access: Access) -> Explanation {
        let decision = self.decide(client, topic_name, access);
        self.explain_decision(client, topic_name, access, decision)
    }

    /// Spells out a decision already made by [`Policy::decide`].
    pub fn explain_decision(
        &self,
        client: ClientRef<'_>,
        topic_name: &str,
        access: Access,
        decision: Decision,
    ) -> Explanation {
        let near_misses = match decision.reason {
            Reason::NoRuleMatched
            | Reason::SubscriptionNeverDelivers
            | Reason::SubscriptionNotWhollyReadable => self.near_misses(client, topic_name, access),
            _ => Vec::new(),
        };
        Explanation {
            verdict: decision.verdict,
            access,
            topic: topic_name.to_owned(),
            username: client.username.map(str::to_owned),
            client_id: client.client_id.to_owned(),
            reason: ReasonDetail::new(self, decision.reason),
            near_misses,
        }
    }

    fn near_misses(
        &self,
        client: ClientRef<'_>,
        topic_name: &str,
        access: Access,
    ) -> Vec<NearMiss> {
        let (own, patterns) = self.applicable_rules(client);
        let mut misses: Vec<(usize, RuleId, NearMiss)> = Vec::new();
        for (id, filter) in own.into_iter().chain(patterns) {
            let rule = self.rule(id);
            let why = if access == Access::Subscribe {
                if topic::filters_intersect(&filter, topic_name) {
                    Miss::AccessNotGranted {
                        permission: rule.permission,
                    }
                } else {
                    match why_no_match(&filter, topic_name) {
                        Some(m) => m,
                        None => continue,
                    }
                }
            } else {
                match why_no_match(&filter, topic_name) {
                    Some(m) => m,
                    None if !rule.permission.grants(access) && !rule.permission.is_deny() => {
                        Miss::AccessNotGranted {
                            permission: rule.permission,
                        }
                    }
                    None => continue,
                }
            };
            let score = closeness(&filter, topic_name, &why);
            misses.push((
                score,
                id,
                NearMiss {
                    rule: RuleRef::new(self, id),
                    effective_filter: filter,
                    why,
                },
            ));
        }
        // Patterns with %u that were left out for an anonymous client are near misses too.
        if client.username.is_none() {
            for (index, rule) in self.rules().iter().enumerate() {
                if rule.uses_username() {
                    let id = RuleId(index as u32);
                    misses.push((
                        0,
                        id,
                        NearMiss {
                            rule: RuleRef::new(self, id),
                            effective_filter: rule.filter.clone(),
                            why: Miss::NoUsername,
                        },
                    ));
                }
            }
        }
        // On 2.1, patterns whose %u/%c levels this client's names cannot fill were left out too.
        if self.semantics() == Semantics::Mosquitto21 {
            let mut buffer = String::new();
            for (index, rule) in self.rules().iter().enumerate() {
                if rule.is_pattern()
                    && !(rule.uses_username() && client.username.is_none())
                    && !substitute_whole_levels(
                        &mut buffer,
                        &rule.filter,
                        client.username,
                        client.client_id,
                    )
                {
                    let id = RuleId(index as u32);
                    misses.push((
                        0,
                        id,
                        NearMiss {
                            rule: RuleRef::new(self, id),
                            effective_filter: rule.filter.clone(),
                            why: Miss::NotAWholeLevel,
                        },
                    ));
                }
            }
        }
        misses.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        misses
            .into_iter()
            .take(MAX_NEAR_MISSES)
            .map(|(_, _, m)| m)
            .collect()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.username {
            Some(u) => format!("user {u:?}"),
            None => "an anonymous client".to_owned(),
        };
        let verdict = match self.verdict {
            Verdict::Allow => "ALLOW",
            Verdict::Deny => "DENY",
        };
        writeln!(
            f,
            "{verdict}: {who} (client id {:?}) {} {:?}",
            self.client_id,
            self.access.as_str(),
            self.topic
        )?;
        writeln!(f, "  because {}", self.reason)?;
        if !self.near_misses.is_empty() {
            writeln!(f, "  nearest rules:")?;
            for miss in &self.near_misses {
                write!(f, "    {} `{}`", miss.rule.location(), miss.rule.text)?;
                if miss.rule.list == "pattern"
                    && miss.effective_filter != pattern_filter(&miss.rule.text)
                {
                    write!(f, " (becomes {:?})", miss.effective_filter)?;
                }
                writeln!(f, ": {}", miss.why)?;
            }
        }
        Ok(())
    }
}

/// The filter part of a rule line (for deciding whether substitution changed anything worth showing).
fn pattern_filter(text: &str) -> &str {
    text.rsplit(' ').next().unwrap_or(text)
}
