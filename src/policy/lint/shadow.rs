//! Rules shadowed inside their own list.
//!
//! Mosquitto checks a list (the client's own, then the patterns) with its deny rules first, wherever
//! they stand, then its other rules in file order, stopping at the first that grants the access. So:
//! * a rule whose every topic a deny rule of the same list matches never grants anything
//!   (`shadowed-by-deny`; for a deny rule, only an *earlier* covering deny is named, so that of two
//!   equal lines only the second is reported);
//! * an allow rule whose every topic, for each access it grants, an earlier rule of the same list
//!   granting that access matches, never decides anything (`shadowed-by-allow`).
//!
//! Long lists are compared by first level: a rule whose first level is plain text can only be covered
//! by rules with the same first level, `+` or `#`.

use std::collections::HashMap;

use super::cover::covers;
use super::{list_name, lists, Code, Finding};
use crate::policy::acl::{AclFile, Permission, Rule, RuleList};
use crate::policy::decision::Access;

/// Adds the shadowed rules of every list of `acl` to `out`.
pub(super) fn find(acl: &AclFile, out: &mut Vec<Finding>) {
    for (list, rules) in lists(acl) {
        find_in_list(&acl.path, list, &rules, out);
    }
}

fn first_level(filter: &str) -> &str {
    filter.split('/').next().unwrap_or("")
}

/// The rules that could cover `inner`, in file order: same first level, or a wildcard one.
struct ByFirstLevel<'a> {
    by_level: HashMap<&'a str, Vec<usize>>,
    wildcard: Vec<usize>,
}

impl<'a> ByFirstLevel<'a> {
    fn new(rules: &[&'a Rule]) -> Self {
        let mut by_level: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut wildcard = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match first_level(&rule.filter) {
                "+" | "#" => wildcard.push(i),
                level => by_level.entry(level).or_default().push(i),
            }
        }
        ByFirstLevel { by_level, wildcard }
    }

    fn candidates(&self, inner: &str) -> Vec<usize> {
        let mut all: Vec<usize> = self.wildcard.clone();
        if let Some(same) = self.by_level.get(first_level(inner)) {
            all.extend(same);
        }
        all.sort_unstable();
        all
    }
}

fn find_in_list(file: &str, list: &RuleList, rules: &[&Rule], out: &mut Vec<Finding>) {
    let patterns = *list == RuleList::Pattern;
    let index = ByFirstLevel::new(rules);
    for (j, rule) in rules.iter().enumerate() {
        let candidates = index.candidates(&rule.filter);
        let covering =
            |i: &usize| -> bool { *i != j && covers(&rules[*i].filter, &rule.filter, patterns) };
        let deny = candidates
            .iter()
            .copied()
            .filter(covering)
            .find(|&i| rules[i].permission.is_deny() && (!rule.permission.is_deny() || i < j));
        if let Some(i) = deny {
            out.push(shadowed_by_deny(file, list, rule, rules[i]));
            continue;
        }
        if rule.permission.is_deny() {
            continue;
        }
        let earlier_granting = |access: Access| {
            candidates
                .iter()
                .copied()
                .filter(|&i| i < j)
                .filter(covering)
                .find(|&i| rules[i].permission.grants(access))
        };
        let mut by = Vec::new();
        let mut all = true;
        for access in [Access::Read, Access::Write] {
            if !rule.permission.grants(access) {
                continue;
            }
            match earlier_granting(access) {
                Some(i) if !by.contains(&i) => by.push(i),
                Some(_) => {}
                None => all = false,
            }
        }
        if all && !by.is_empty() {
            let mut finding = Finding::new(
                Code::ShadowedByAllow,
                file,
                rule.line,
                format!(
                    "`{}` never decides anything: in {} an earlier rule already grants {} on every topic it matches",
                    rule.text,
                    list_name(list),
                    access_words(rule.permission)
                ),
                "remove the line (it changes no decision), or move it above the broader rule if you want it named as the reason",
            );
            for i in by {
                finding = finding.with_rule(file, rules[i]);
            }
            out.push(finding);
        }
    }
}

fn access_words(permission: Permission) -> &'static str {
    match permission {
        Permission::Read => "read",
        Permission::Write => "write",
        Permission::ReadWrite => "read and write",
        Permission::Deny => "nothing",
    }
}

fn shadowed_by_deny(file: &str, list: &RuleList, rule: &Rule, deny: &Rule) -> Finding {
    let (message, hint) = if rule.permission.is_deny() {
        (
            format!(
                "`{}` adds nothing: the earlier deny rule at line {} of {} already refuses every topic it matches",
                rule.text,
                deny.line,
                list_name(list)
            ),
            "remove the line",
        )
    } else {
        (
            format!(
                "`{}` never grants anything: the deny rule at line {} of {} matches every topic it does, and deny rules are checked first wherever they stand",
                rule.text,
                deny.line,
                list_name(list)
            ),
            "remove the line, or narrow the deny rule so that it no longer covers this one",
        )
    };
    Finding::new(Code::ShadowedByDeny, file, rule.line, message, hint).with_rule(file, deny)
}
