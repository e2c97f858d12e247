//! MQTT topic and filter syntax and matching, with Mosquitto's `$` rule.
//!
//! Matching is the standard MQTT one (`+` is exactly one level, possibly empty; `#` is the rest, including
//! the parent level: `a/#` matches `a`), plus the `$` rule: a filter starting with `$` matches only topics
//! starting with `$`, and the reverse. A concrete topic containing `+` or `#`, an empty topic or an empty
//! filter match nothing (Mosquitto's `mosquitto_topic_matches_sub` returns an error for them).
//!
//! [`TopicName`] and [`TopicFilter`] (in `topic/names.rs`) are what this grammar accepted, as types: the
//! broker's codec makes them from the wire, the store from its records, and the rest of the broker
//! takes them.

use thiserror::Error;

mod names;

pub use names::{TopicFilter, TopicFilterRef, TopicName, SHARE_PREFIX};

/// Mosquitto's limit on topic levels (`TOPIC_HIERARCHY_LIMIT`: at most 200 `/`).
pub const MAX_SLASHES: usize = 200;
/// The longest topic or filter MQTT can carry.
pub const MAX_LEN: usize = 65535;

/// Why a subscription filter is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FilterError {
    /// The filter is empty.
    #[error("expected a topic filter, found nothing")]
    Empty,
    /// `+` shares its level with other characters.
    #[error("`+` must fill a whole level (as in `a/+/b`)")]
    PlusNotWholeLevel,
    /// `#` is not alone in the last level.
    #[error("`#` must fill the last level (as in `a/#`)")]
    HashNotLast,
    /// Longer than 65535 bytes.
    #[error("longer than 65535 bytes")]
    TooLong,
    /// More than 200 `/`.
    #[error("more than 200 levels")]
    TooManyLevels,
    /// Contains U+0000 (MQTT-4.7.3-2; only [`TopicFilter::new`] checks this).
    #[error("contains U+0000")]
    Nul,
    /// `$share/GROUP/FILTER` whose GROUP has `+` or `#` (MQTT-4.8.2-2; only [`TopicFilter::new`]).
    #[error("a share name cannot contain `+` or `#`")]
    ShareNameWildcard,
    /// `$share/` without a GROUP or a FILTER (MQTT-4.8.2-1; only [`TopicFilter::new`]).
    #[error("a shared subscription needs a share name and a filter (`$share/NAME/FILTER`)")]
    ShareIncomplete,
    /// `$share` alone (only [`TopicFilter::new`]).
    #[error("`$share` alone is not a filter")]
    ShareAlone,
}

/// Why a concrete topic is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TopicError {
    /// The topic is empty.
    #[error("expected a topic, found nothing")]
    Empty,
    /// The topic has a wildcard.
    #[error(
        "a topic to publish or read cannot contain `+` or `#` (those are for subscription filters)"
    )]
    Wildcard,
    /// Longer than 65535 bytes.
    #[error("longer than 65535 bytes")]
    TooLong,
    /// More than 200 `/`.
    #[error("more than 200 levels")]
    TooManyLevels,
    /// Contains U+0000 (MQTT-4.7.3-2; only [`TopicName::new`] checks this).
    #[error("contains U+0000")]
    Nul,
}

/// Checks a subscription filter as Mosquitto's `mosquitto_sub_topic_check` does.
pub fn validate_filter(filter: &str) -> Result<(), FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    if filter.len() > MAX_LEN {
        return Err(FilterError::TooLong);
    }
    let mut levels = 0usize;
    let mut iter = filter.split('/').peekable();
    while let Some(level) = iter.next() {
        levels += 1;
        if level.contains('+') && level != "+" {
            return Err(FilterError::PlusNotWholeLevel);
        }
        if level.contains('#') && (level != "#" || iter.peek().is_some()) {
            return Err(FilterError::HashNotLast);
        }
    }
    if levels - 1 > MAX_SLASHES {
        return Err(FilterError::TooManyLevels);
    }
    Ok(())
}

/// Checks a concrete topic (one that can be published to).
///
/// On the per-message path: one pass over the bytes eight at a time, and `/` counted only when the topic
/// is long enough to have too many.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    if has_wildcard(topic) {
        return Err(TopicError::Wildcard);
    }
    if topic.len() > MAX_SLASHES && level_count(topic) - 1 > MAX_SLASHES {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// Does `s` contain `+` or `#`? (Eight bytes at a time.)
pub fn has_wildcard(s: &str) -> bool {
    super::bytes::contains_either(s.as_bytes(), b'+', b'#')
}

/// Does `filter` match the concrete `topic`? Both are assumed valid; invalid input never matches.
pub fn matches(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || topic.is_empty() || topic.bytes().any(|b| b == b'+' || b == b'#') {
        return false;
    }
    if filter.starts_with('$') != topic.starts_with('$') {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some(fl), Some(tl)) => {
                if fl != "+" && fl != tl {
                    return false;
                }
            }
            (None, None) => return true,
            // `a/#` matching `a` was handled by the first arm; anything else left over is a miss.
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// Could some concrete topic match both filters? (Both are assumed valid.) Respects the `$` rule.
pub fn filters_intersect(a: &str, b: &str) -> bool {
    // The topic's first level must satisfy both filters' `$` constraints.
    if a.starts_with('$') != b.starts_with('$') {
        return false;
    }
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some(x), Some(y)) => {
                if x != "+" && y != "+" && x != y {
                    return false;
                }
            }
            (None, None) => return true,
            // One filter ended and the other goes on with something other than a `#`.
            (None, Some(_)) | (Some(_), None) => return false,
        }
    }
}

/// Does `outer` match every topic that `inner` matches? (Both assumed valid.) Conservative: may answer
/// `false` for exotic pairs where the true answer is `true`, never the reverse.
pub fn filter_covers(outer: &str, inner: &str) -> bool {
    if outer.starts_with('$') != inner.starts_with('$') {
        // `#` covers no `$` topic; a `$` filter covers only `$` topics.
        return false;
    }
    let (mut o, mut n) = (outer.split('/'), inner.split('/'));
    loop {
        match (o.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some(_), None) | (Some(_), Some("#")) | (None, Some(_)) => return false,
            (Some(ol), Some(nl)) => {
                if ol != "+" && ol != nl {
                    return false;
                }
            }
            (None, None) => return true,
        }
    }
}

/// The number of levels in a topic or filter (`a/b` has 2, `a/` has 2, `a` has 1).
pub fn level_count(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_syntax_follows_mosquitto_sub_topic_check() {
        for ok in [
            "#", "+", "a/#", "+/+/+/%u", "a//b", "/", "a b/c", "$SYS/#", "+/#",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_filter("a/#/b"), Err(FilterError::HashNotLast));
        assert_eq!(validate_filter("a#"), Err(FilterError::HashNotLast));
        assert_eq!(validate_filter("a/b+"), Err(FilterError::PlusNotWholeLevel));
        assert_eq!(validate_filter("a # note"), Err(FilterError::HashNotLast));
        assert_eq!(validate_filter(""), Err(FilterError::Empty));
        assert_eq!(validate_filter(&"/".repeat(200)), Ok(()));
        assert_eq!(
            validate_filter(&"/".repeat(201)),
            Err(FilterError::TooManyLevels)
        );
    }

    #[test]
    fn matching_follows_mqtt_and_the_dollar_rule() {
        let yes = [
            ("+/+/+/u", "a//c/u"),
            ("a/#", "a"),
            ("a/#", "a/"),
            ("foo/+/#", "foo/bar"),
            ("+/#", "a"),
            ("a/+", "a/"),
            ("#", "/"),
            ("+/+", "/"),
            ("$SYS/#", "$SYS/broker/version"),
            ("$SYS/#", "$SYS"),
            ("a//#", "a/"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("+/+/+/u", "a/b/u"),
            ("a/+", "a"),
            ("#", "$SYS/x"),
            ("+/broker/#", "$SYS/broker/x"),
            ("$SYS/#", "SYS/x"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a", "a+"),
            ("#", ""),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }

    #[test]
    fn intersection_and_cover() {
        assert!(filters_intersect("+/+/+/user1", "#"));
        assert!(filters_intersect("a/+", "+/b"));
        assert!(!filters_intersect("a/+", "a/b/c"));
        assert!(filters_intersect("a/#", "a"));
        assert!(!filters_intersect("#", "$SYS/#"));
        assert!(filters_intersect("$SYS/#", "$SYS/+/x"));
        assert!(filter_covers("#", "a/b"));
        assert!(filter_covers("a/+", "a/b"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(filter_covers("a/#", "a/+/c"));
        assert!(!filter_covers("a/+", "a/#"));
        assert!(!filter_covers("#", "$SYS/#"));
    }
}
