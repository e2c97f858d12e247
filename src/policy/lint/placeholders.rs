//! `%u`/`%c` where they do not do what they seem to, and wildcards that leave `$SYS` out.
//!
//! * In a `topic` line `%u`/`%c` are literal text: only `pattern` lines are substituted (Mosquitto
//!   2.0's `aclfile__parse` substitutes nothing in `topic` lines, and neither does 2.1).
//! * In a pattern level that is more than `%u`/`%c` (`a%ub`), Mosquitto 2.0 substitutes and 2.1 does
//!   not ([`crate::policy::semantics`]): the same file is two policies.
//! * `#` matches no topic starting with `$` (MQTT-4.7.2-1, and Mosquitto skips rules not starting with
//!   `$` for `$` topics outright): `topic readwrite #` does not let anyone read `$SYS`. Reported once
//!   per list, unless the list also grants a read of some `$` filter.

use super::{lists, Code, Finding};
use crate::policy::acl::{AclFile, RuleList};
use crate::policy::decision::Access;

/// Adds the placeholder and `$SYS` findings of `acl` to `out`.
pub(super) fn find(acl: &AclFile, out: &mut Vec<Finding>) {
    for rule in &acl.rules {
        let has_u = rule.filter.contains("%u");
        let has_c = rule.filter.contains("%c");
        match &rule.list {
            RuleList::Anonymous | RuleList::User(_) if has_u || has_c => {
                let placeholder = if has_u { "%u" } else { "%c" };
                let extra = if rule.list == RuleList::Anonymous && has_u {
                    ", and it is in the anonymous list, whose clients have no username at all: it can never match the username it seems to name"
                } else {
                    ""
                };
                out.push(Finding::new(
                    Code::PlaceholderInTopicLine,
                    &acl.path,
                    rule.line,
                    format!(
                        "`{}`: `{placeholder}` in a `topic` line is literal text, never substituted; the rule matches only a topic spelled with `{placeholder}`{extra}",
                        rule.text
                    ),
                    "write it as a `pattern` line to substitute the username or client id",
                ));
            }
            RuleList::Pattern => {
                let inside = rule
                    .filter
                    .split('/')
                    .find(|l| (l.contains("%u") || l.contains("%c")) && *l != "%u" && *l != "%c");
                if let Some(level) = inside {
                    out.push(Finding::new(
                        Code::PlaceholderInsideLevel,
                        &acl.path,
                        rule.line,
                        format!(
                            "`{}`: the level `{level}` holds `%u`/`%c` with other text; Mosquitto 2.0 substitutes it, Mosquitto 2.1 only substitutes a level that is exactly `%u` or `%c` and reads this one literally, so the file means two different policies",
                            rule.text
                        ),
                        "make `%u`/`%c` a level of its own (`a/%u/b` instead of `a%ub`), which both releases read alike",
                    ));
                }
            }
            _ => {}
        }
    }
    for (_, rules) in lists(acl) {
        let reads_sys = rules
            .iter()
            .any(|r| r.permission.grants(Access::Read) && r.filter.starts_with('$'));
        if reads_sys {
            continue;
        }
        let everything = rules
            .iter()
            .find(|r| r.permission.grants(Access::Read) && r.filter == "#");
        if let Some(rule) = everything {
            out.push(Finding::new(
                Code::WildcardExcludesSys,
                &acl.path,
                rule.line,
                format!(
                    "`{}` matches no topic starting with `$`: `#` never matches `$SYS/...`, so these clients cannot read the broker's statistics",
                    rule.text
                ),
                "add `topic read $SYS/#` (or a narrower `$SYS` filter) if they should read them; otherwise nothing to do",
            ));
        }
    }
}
