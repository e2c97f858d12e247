//! Pattern denies that a user's own list always answers first.
//!
//! Mosquitto checks the client's own list (its `user` block, or the anonymous list) before the
//! patterns, and stops there when an own rule matches with the access asked for (or is a deny). So a
//! `pattern deny` never applies to a user for an access when one of the user's own rules granting
//! that access matches every topic the pattern matches for that user: `topic readwrite #` in a user
//! block makes every pattern deny (not starting with `$`) moot for that user.

use super::cover::covers_for_user;
use super::{lists, Code, Finding};
use crate::policy::acl::{AclFile, Rule, RuleList};
use crate::policy::decision::Access;

/// How many users and rules a finding names before it says "and N more".
const SHOWN: usize = 5;

/// Adds a finding for each pattern deny that some user's own list answers first.
pub(super) fn find(acl: &AclFile, out: &mut Vec<Finding>) {
    let lists = lists(acl);
    let Some((_, patterns)) = lists.iter().find(|(l, _)| **l == RuleList::Pattern) else {
        return;
    };
    for deny in patterns.iter().filter(|r| r.permission.is_deny()) {
        // (who, accesses, the own rules that answer first)
        let mut overridden: Vec<(String, &'static str, Vec<&Rule>)> = Vec::new();
        for (list, own) in lists.iter().filter(|(l, _)| **l != RuleList::Pattern) {
            let username = match list {
                RuleList::User(name) => Some(name.as_str()),
                _ => None,
            };
            let first_granting = |access: Access| {
                own.iter().copied().find(|rule| {
                    rule.permission.grants(access)
                        && covers_for_user(&rule.filter, &deny.filter, username, acl.semantics)
                            == Some(true)
                })
            };
            let (read, write) = (first_granting(Access::Read), first_granting(Access::Write));
            let accesses = match (read.is_some(), write.is_some()) {
                (true, true) => "reads and writes",
                (true, false) => "reads",
                (false, true) => "writes",
                (false, false) => continue,
            };
            let mut rules: Vec<&Rule> = read.into_iter().chain(write).collect();
            rules.dedup_by_key(|r| r.line);
            let who = match username {
                Some(name) => format!("user {name}"),
                None => "anonymous clients".to_owned(),
            };
            overridden.push((who, accesses, rules));
        }
        if overridden.is_empty() {
            continue;
        }
        let mut names: Vec<String> = overridden
            .iter()
            .take(SHOWN)
            .map(|(who, accesses, _)| format!("{who} ({accesses})"))
            .collect();
        if overridden.len() > SHOWN {
            names.push(format!("and {} more", overridden.len() - SHOWN));
        }
        let mut finding = Finding::new(
            Code::DenyOverriddenByOwnAllow,
            &acl.path,
            deny.line,
            format!(
                "`{}` never applies to {}: their own list is checked first and grants on every topic this pattern matches",
                deny.text,
                names.join(", ")
            ),
            "put a `topic deny` line with the same topic in those users' own blocks, or narrow their own rules",
        );
        let mut shown: Vec<u32> = Vec::new();
        for (_, _, rules) in &overridden {
            for rule in rules {
                if shown.len() < SHOWN && !shown.contains(&rule.line) {
                    shown.push(rule.line);
                    finding = finding.with_rule(&acl.path, rule);
                }
            }
        }
        out.push(finding);
    }
}
