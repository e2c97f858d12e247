//! What a broker that authorizes a SUBSCRIBE once (EMQX, VerneMQ, RabbitMQ) needs from the policy,
//! where Mosquitto checks every delivered message instead:
//!
//! * [`Policy::decide_subscribe_strict`]: grant a filter only when every topic it matches is readable;
//! * [`Policy::effective_rules`]: the rules that apply to one client, `%u`/`%c` substituted, in the
//!   order Mosquitto consults them (the client's own list, deny first, then the patterns), for a broker
//!   that takes a client's rules at CONNECT (EMQX's `acl` list).

use super::policy::{dangerous_identity, Policy};
use super::rule::Permission;
use crate::policy::decision::{Access, ClientRef, Decision, Reason};
use crate::policy::topic;

/// One rule as it applies to one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveRule {
    /// What it grants (or `deny`).
    pub permission: Permission,
    /// The filter, `%u`/`%c` substituted.
    pub filter: String,
}

/// The rules that apply to one client, in Mosquitto's order of consultation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectiveRules {
    /// The client's own list (its `user` block, or the anonymous list): consulted first.
    pub own: Vec<EffectiveRule>,
    /// The patterns, consulted only when no rule of the own list decides. Empty when the patterns do
    /// not apply to this client at all (a username or client id with `+`/`#`, CVE-2017-7650).
    pub patterns: Vec<EffectiveRule>,
}

impl Policy {
    /// The rules that apply to `client` (see [`EffectiveRules`]).
    pub fn effective_rules(&self, client: ClientRef<'_>) -> EffectiveRules {
        let (own, patterns) = self.applicable_rules(client);
        let effective = |list: Vec<(crate::policy::RuleId, String)>| {
            list.into_iter()
                .map(|(id, filter)| EffectiveRule {
                    permission: self.rule(id).permission,
                    filter,
                })
                .collect::<Vec<_>>()
        };
        EffectiveRules {
            own: effective(own),
            patterns: if dangerous_identity(client).is_some() {
                Vec::new()
            } else {
                effective(patterns)
            },
        }
    }

    /// The strict answer to a SUBSCRIBE for a broker that will not check each delivery: allowed only
    /// when every topic `filter` matches is readable by `client`. Sound, not complete: when the rules
    /// do not show it (a filter covered partly by the client's own list and partly by patterns), the
    /// answer is a denial ([`Reason::SubscriptionNotWhollyReadable`]).
    pub fn decide_subscribe_strict(&self, client: ClientRef<'_>, filter: &str) -> Decision {
        let lenient = self.decide(client, filter, Access::Subscribe);
        if !lenient.is_allowed() {
            return lenient;
        }
        let filter = match filter.strip_prefix("$share/") {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
            None => filter,
        };
        if !topic::has_wildcard(filter) {
            // One topic: the subscription delivers exactly what reading it would.
            let read = self.decide(client, filter, Access::Read);
            return if read.is_allowed() { lenient } else { read };
        }
        let (own, patterns) = self.applicable_rules(client);
        let intersects_deny = |list: &[(crate::policy::RuleId, String)]| {
            list.iter().any(|(id, f)| {
                self.rule(*id).permission.is_deny() && topic::filters_intersect(f, filter)
            })
        };
        let covering_grant = |list: &[(crate::policy::RuleId, String)]| {
            list.iter()
                .find(|(id, f)| {
                    self.rule(*id).permission.grants(Access::Read)
                        && topic::filter_covers(f, filter)
                })
                .map(|(id, _)| *id)
        };
        let not_wholly = Decision::deny(Reason::SubscriptionNotWhollyReadable);
        if intersects_deny(&own) {
            return not_wholly;
        }
        if let Some(id) = covering_grant(&own) {
            return Decision::allow(Reason::SubscriptionMayDeliver(id));
        }
        // Some topics of the filter fall through to the patterns: they must cover all of it.
        if dangerous_identity(client).is_some() || intersects_deny(&patterns) {
            return not_wholly;
        }
        match covering_grant(&patterns) {
            Some(id) => Decision::allow(Reason::SubscriptionMayDeliver(id)),
            None => not_wholly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    fn policy(text: &str) -> Policy {
        Policy::from_acl("acl", text.as_bytes()).unwrap()
    }

    #[test]
    fn strict_denies_a_partly_readable_filter_that_lenient_grants() {
        let p = policy("user u\ntopic read a/#\ntopic deny a/secret\n");
        let u = ClientRef::from_names(Some("u"), Some("c"));
        assert!(p.decide(u, "a/#", Access::Subscribe).is_allowed());
        let d = p.decide_subscribe_strict(u, "a/#");
        assert_eq!(d.reason, Reason::SubscriptionNotWhollyReadable);
        assert!(p.decide_subscribe_strict(u, "a/x/+").is_allowed());
        assert_eq!(
            p.decide_subscribe_strict(u, "a/secret").verdict,
            Verdict::Deny
        );
        assert!(!p.decide_subscribe_strict(u, "#").is_allowed());
    }

    #[test]
    fn strict_checks_patterns_when_the_own_list_does_not_cover() {
        let p = policy("pattern read sensors/%u/#\npattern deny sensors/%u/private\n");
        let u = ClientRef::from_names(Some("u"), Some("c"));
        assert!(!p.decide_subscribe_strict(u, "sensors/u/#").is_allowed());
        assert!(p.decide_subscribe_strict(u, "sensors/u/+/x").is_allowed());
        let bad = ClientRef::from_names(Some("u#"), Some("c"));
        assert!(!p.decide_subscribe_strict(bad, "sensors/+/x").is_allowed());
    }

    #[test]
    fn effective_rules_substitute_and_drop_patterns_for_dangerous_names() {
        let p = policy("user u\ntopic write a/b\npattern read x/%u/%c\n");
        let rules = p.effective_rules(ClientRef::from_names(Some("u"), Some("c")));
        assert_eq!(rules.own.len(), 1);
        assert_eq!(rules.patterns[0].filter, "x/u/c");
        let rules = p.effective_rules(ClientRef::from_names(Some("u"), Some("c+")));
        assert!(rules.patterns.is_empty());
    }
}
