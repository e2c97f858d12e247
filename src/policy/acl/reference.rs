//! A plain, obviously-correct transcription of Mosquitto 2.0's `mosquitto_acl_check_default` (§2.3 of the
//! reference), and of 2.1's `acl_file__check` for a file parsed with 2.1 semantics: scan the client's
//! list, deny entries first, then the patterns after substitution (2.1: whole `%u`/`%c` levels only).
//! It allocates and scans; it exists to check the compiled [`super::Policy`] against (property tests) and
//! must stay a direct reading of the algorithm, not an optimisation.

use super::parse::AclFile;
use super::rule::{substitute, Rule, RuleList};
use crate::policy::decision::{Access, ClientRef, Verdict};
use crate::policy::semantics::{substitute_whole_levels, Semantics};
use crate::policy::topic;

/// The verdict Mosquitto would give for a read or write.
pub fn reference_verdict(
    file: &AclFile,
    client: ClientRef<'_>,
    topic_name: &str,
    access: Access,
) -> Verdict {
    assert!(
        matches!(access, Access::Read | Access::Write),
        "the reference covers reads and writes"
    );
    if let Some(decision) = super::policy::broker_rules(topic_name, access) {
        return decision.verdict;
    }
    let bit = |rule: &Rule| rule.permission.grants(access);
    // Mosquitto's list order: deny entries at the front, others in file order.
    let ordered = |rules: Vec<&Rule>| -> Vec<Rule> {
        let mut denies: Vec<Rule> = rules
            .iter()
            .filter(|r| r.permission.is_deny())
            .map(|r| (*r).clone())
            .collect();
        denies.reverse(); // each deny is pushed to the front as it is read
        denies.extend(
            rules
                .iter()
                .filter(|r| !r.permission.is_deny())
                .map(|r| (*r).clone()),
        );
        denies
    };
    let own: Vec<&Rule> = file
        .rules
        .iter()
        .filter(|r| match (&r.list, client.username) {
            (RuleList::Anonymous, None) => true,
            (RuleList::User(name), Some(u)) => name == u,
            _ => false,
        })
        .collect();
    let patterns: Vec<&Rule> = file
        .rules
        .iter()
        .filter(|r| r.list == RuleList::Pattern)
        .collect();
    if own.is_empty() && patterns.is_empty() {
        return Verdict::Deny;
    }
    for rule in ordered(own) {
        if topic_name.starts_with('$') && !rule.filter.starts_with('$') {
            continue;
        }
        if topic::matches(&rule.filter, topic_name) {
            if rule.permission.is_deny() {
                return Verdict::Deny;
            }
            if bit(&rule) {
                return Verdict::Allow;
            }
        }
    }
    if !patterns.is_empty() {
        let dangerous = |s: &str| s.contains('+') || s.contains('#');
        if client.username.is_some_and(dangerous) || dangerous(client.client_id) {
            return Verdict::Deny;
        }
    }
    for rule in ordered(patterns) {
        if rule.filter.contains("%u") && client.username.is_none() {
            continue;
        }
        let filter = match file.semantics {
            Semantics::Mosquitto20 => substitute(&rule.filter, client.username, client.client_id),
            Semantics::Mosquitto21 => {
                let mut out = String::new();
                if !substitute_whole_levels(
                    &mut out,
                    &rule.filter,
                    client.username,
                    client.client_id,
                ) {
                    continue;
                }
                out
            }
        };
        if topic::matches(&filter, topic_name) {
            if rule.permission.is_deny() {
                return Verdict::Deny;
            }
            if bit(&rule) {
                return Verdict::Allow;
            }
        }
    }
    Verdict::Deny
}
