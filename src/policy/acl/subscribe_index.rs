//! Which rules of a list the subscription check must look at, so that a SUBSCRIBE costs little even when
//! a list has thousands of rules.
//!
//! The check looks for the first rule, in file order, that covers the filter (a deny) or intersects it (a
//! read grant). A rule whose first level is plain text can only concern a filter whose first level is the
//! same text, or a wildcard:
//! * a filter starting with text `L` needs the rules starting with `L` and the rules starting with a
//!   wildcard or a `%u`/`%c` substitution ("open" rules);
//! * a filter starting with `+` or `#` can be covered only by open rules, and intersects a rule `L/rest`
//!   exactly when it intersects every other rule `L'/rest` whose first level is on the same side of the
//!   `$` rule. So among plain-first-level read grants it needs only the earliest rule of each such group.
//!
//! The candidates come out in file order, so the check names the same rule as a scan of the whole list.

use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;

use super::rule::Rule;
use crate::policy::decision::{Access, RuleId};

/// Lists with at most this many rules are scanned whole: an index would cost more than it saves.
pub(crate) const INDEX_FROM: usize = 32;

/// What the candidates are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Looking {
    /// Deny rules that may cover the filter.
    ForCover,
    /// Read grants that may intersect the filter.
    ForIntersection,
}

/// One list's rules grouped by first level (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct SubscribeIndex {
    /// Rules whose first level is `+`, `#` or contains a substitution, in file order.
    open: Vec<RuleId>,
    /// Rules whose first level is plain text, by that text, each in file order.
    by_first: HashMap<Box<str>, Vec<RuleId>>,
    /// Among plain-first-level read grants, the earliest of each group with the same text after the first
    /// level and the same `$`-ness, in file order.
    read_groups: Vec<RuleId>,
}

impl SubscribeIndex {
    /// Indexes `ids` (in file order). `substitute`: the list is the pattern list, where `%u`/`%c` are
    /// replaced.
    pub fn build<'r>(
        ids: &[RuleId],
        rule: impl Fn(RuleId) -> &'r Rule,
        substitute: bool,
    ) -> SubscribeIndex {
        let mut index = SubscribeIndex::default();
        let mut groups: HashSet<(bool, &str)> = HashSet::default();
        for &id in ids {
            let filter = rule(id).filter.as_str();
            let first = first_level(filter);
            if !is_plain(first, substitute) {
                index.open.push(id);
                continue;
            }
            index.by_first.entry(first.into()).or_default().push(id);
            if rule(id).permission.grants(Access::Read)
                && groups.insert((first.starts_with('$'), &filter[first.len()..]))
            {
                index.read_groups.push(id);
            }
        }
        index
    }

    /// The rules to try for `filter` (already validated, without `$share/GROUP/`), in file order.
    pub fn candidates(&self, filter: &str, looking: Looking) -> Merge<'_> {
        let first = first_level(filter);
        if first != "+" && first != "#" {
            let same = self.by_first.get(first).map_or(&[][..], Vec::as_slice);
            return Merge::new(same, &self.open);
        }
        match looking {
            Looking::ForCover => Merge::new(&self.open, &[]),
            Looking::ForIntersection => Merge::new(&self.open, &self.read_groups),
        }
    }
}

/// The first level of a filter.
fn first_level(filter: &str) -> &str {
    filter.split('/').next().unwrap_or("")
}

/// A first level that stays the same text whoever subscribes.
fn is_plain(first: &str, substitute: bool) -> bool {
    first != "+" && first != "#" && !(substitute && (first.contains("%u") || first.contains("%c")))
}

/// Two ascending lists of rule ids, merged in ascending order (file order).
#[derive(Clone, Debug)]
pub(crate) struct Merge<'a> {
    a: &'a [RuleId],
    b: &'a [RuleId],
}

impl<'a> Merge<'a> {
    fn new(a: &'a [RuleId], b: &'a [RuleId]) -> Merge<'a> {
        Merge { a, b }
    }

    /// All of one list, unindexed.
    pub fn whole(rules: &'a [RuleId]) -> Merge<'a> {
        Merge::new(rules, &[])
    }
}

impl Iterator for Merge<'_> {
    type Item = RuleId;

    fn next(&mut self) -> Option<RuleId> {
        let take_a = match (self.a.first(), self.b.first()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x <= y,
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (&id, rest) = side.split_first()?;
        *side = rest;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::acl::{parse_acl, RuleList};

    fn index(acl: &str) -> (Vec<Rule>, SubscribeIndex) {
        let file = parse_acl("acl.txt", acl.as_bytes()).unwrap();
        let ids: Vec<RuleId> = (0..file.rules.len() as u32).map(RuleId).collect();
        let substitute = file.rules.iter().all(|r| r.list == RuleList::Pattern);
        let index = SubscribeIndex::build(&ids, |id| &file.rules[id.index()], substitute);
        (file.rules, index)
    }

    fn ids(m: Merge<'_>) -> Vec<u32> {
        m.map(|id| id.0).collect()
    }

    #[test]
    fn a_plain_first_level_narrows_the_candidates_in_file_order() {
        let (_, index) = index(
            "pattern read a/%u\npattern read +/x\npattern read b/%u\npattern read a/y\npattern read %u/z\n",
        );
        assert_eq!(
            ids(index.candidates("a/q", Looking::ForCover)),
            [0, 1, 3, 4]
        );
        assert_eq!(
            ids(index.candidates("c/q", Looking::ForIntersection)),
            [1, 4]
        );
    }

    #[test]
    fn a_wildcard_first_level_needs_one_read_rule_per_group() {
        let mut acl = String::new();
        for i in 0..100 {
            acl.push_str(&format!("pattern readwrite site{i}/+/%u/#\n"));
        }
        acl.push_str(
            "pattern deny $SYS/+/%u/#\npattern read $x/+/%u/#\npattern readwrite +/+/+/%u\n",
        );
        let (_, index) = index(&acl);
        // 100 is the `$SYS` deny, 101 the `$x` read, 102 the only open rule.
        assert_eq!(ids(index.candidates("+/x", Looking::ForCover)), [102]);
        assert_eq!(
            ids(index.candidates("#", Looking::ForIntersection)),
            [0, 101, 102]
        );
    }
}
