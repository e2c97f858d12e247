//! "Does rule A match every topic rule B can, for every client?" — answered conservatively: `true`
//! only when it is provable, whatever `%u`/`%c` become.
//!
//! Mosquitto 2.0 replaces `%u`/`%c` anywhere in a pattern, and the value may contain `/` (spanning
//! levels) or start with `$` (then the `$` rule applies to the result). 2.1 substitutes only whole
//! levels. So a level containing `%u`/`%c` is *opaque*: it can be covered only by a textually equal
//! level of another pattern (both become the same text for the same client) or by a `#` after the
//! first level. A `+` never covers it, and neither does a `#` in the first level (the value may start
//! with `$`). That is sound for both releases. (A value with `+` or `#` never reaches the patterns:
//! Mosquitto denies such clients first, CVE-2017-7650.)

use crate::policy::semantics::{substitute_whole_levels, Semantics};
use crate::policy::topic;

fn opaque(level: &str) -> bool {
    level.contains("%u") || level.contains("%c")
}

/// Whether filter `outer` matches every topic `inner` matches, for every client. `patterns` is `true`
/// when both are filters of `pattern` lines (substituted for the same client), `false` when both are
/// `topic` lines (taken literally).
pub fn covers(outer: &str, inner: &str, patterns: bool) -> bool {
    if !patterns {
        return topic::filter_covers(outer, inner);
    }
    covers_opaque(outer, inner, true)
}

/// Whether the `topic` line filter `outer` (of `username`'s own list, or the anonymous list for
/// `None`) matches every topic that `pattern` matches for that user, whatever the client id.
/// `None` when the pattern never applies to that user (no username for `%u`, or on 2.1 a username
/// that cannot fill a whole level): then nothing is covered and nothing needs to be.
pub fn covers_for_user(
    outer: &str,
    pattern: &str,
    username: Option<&str>,
    semantics: Semantics,
) -> Option<bool> {
    if pattern.contains("%u") && username.is_none() {
        return None;
    }
    // The client id stays `%c`: an opaque level that only a `#` covers.
    let inner = match semantics {
        Semantics::Mosquitto20 => crate::policy::acl::substitute(pattern, username, "%c"),
        Semantics::Mosquitto21 => {
            let mut out = String::new();
            if !substitute_whole_levels(&mut out, pattern, username, "%c") {
                return None;
            }
            out
        }
    };
    Some(covers_opaque(outer, &inner, false))
}

/// The level-by-level walk; opaque levels of `inner` are covered by an equal level of `outer` only
/// when `equal_opaque` (both are substituted alike).
fn covers_opaque(outer: &str, inner: &str, equal_opaque: bool) -> bool {
    if outer.starts_with('$') != inner.starts_with('$') {
        return false;
    }
    let (mut o, mut n) = (outer.split('/'), inner.split('/'));
    let mut first = true;
    loop {
        match (o.next(), n.next()) {
            (Some("#"), Some(nl)) if first && opaque(nl) => return false,
            (Some("#"), _) => return true,
            (Some(_), None) | (Some(_), Some("#")) | (None, Some(_)) => return false,
            (Some(ol), Some(nl)) => {
                let ok = if opaque(nl) || opaque(ol) {
                    equal_opaque && ol == nl
                } else {
                    ol == "+" || ol == nl
                };
                if !ok {
                    return false;
                }
            }
            (None, None) => return true,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_lines_cover_as_plain_filters() {
        assert!(covers("a/#", "a/b/c", false));
        assert!(covers("+/b", "x/b", false));
        assert!(!covers("#", "$SYS/#", false));
        assert!(!covers("a/+", "a/#", false));
        assert!(covers("a/%u", "a/%u", false), "literal text is literal");
    }

    #[test]
    fn equal_placeholder_levels_cover_each_other_and_plus_never_covers_one() {
        assert!(covers("+/+/+/%u", "a/b/c/%u", true));
        assert!(covers("x/%u/#", "x/%u/y", true));
        assert!(!covers("x/+/y", "x/%u/y", true), "%u may hold a `/`");
        assert!(!covers("x/%u", "x/%c", true));
        assert!(!covers("x/a%ub", "x/+", true));
        assert!(covers("x/#", "x/%u/y", true));
    }

    #[test]
    fn a_first_level_hash_does_not_cover_a_placeholder_that_may_start_with_a_dollar() {
        assert!(!covers("#", "%u/x", true));
        assert!(covers("%u/#", "%u/x", true));
        assert!(covers("#", "a/%u", true));
    }

    #[test]
    fn own_rules_against_a_pattern_for_one_user() {
        let v20 = Semantics::Mosquitto20;
        assert_eq!(
            covers_for_user("#", "secret/%u", Some("bob"), v20),
            Some(true)
        );
        assert_eq!(
            covers_for_user("secret/bob", "secret/%u", Some("bob"), v20),
            Some(true)
        );
        assert_eq!(
            covers_for_user("secret/+", "secret/%u", Some("a/b"), v20),
            Some(false)
        );
        assert_eq!(covers_for_user("#", "secret/%u", None, v20), None);
        assert_eq!(
            covers_for_user("secret/+", "secret/%c", Some("bob"), v20),
            Some(false)
        );
        assert_eq!(
            covers_for_user("secret/#", "secret/%c", Some("bob"), v20),
            Some(true)
        );
        assert_eq!(covers_for_user("#", "%c/x", Some("bob"), v20), Some(false));
        assert_eq!(covers_for_user("#", "%u/x", Some("$bob"), v20), Some(false));
        let v21 = Semantics::Mosquitto21;
        assert_eq!(covers_for_user("#", "s/%u", Some("a/b"), v21), None);
        assert_eq!(
            covers_for_user("s/a%ub", "s/a%ub", Some("x"), v21),
            Some(false)
        );
        assert_eq!(covers_for_user("s/+", "s/%u", Some("bob"), v21), Some(true));
    }
}
