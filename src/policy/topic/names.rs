//! Validated topic names and filters: a [`TopicName`] or a [`TopicFilter`] exists only after the
//! grammar of [`super`] accepted it, so whoever takes one does not check it again.
//!
//! Both own their text as an `Arc<str>`: made once (one allocation, as the `String` they replace),
//! then cloned by reference count wherever a message or a subscription goes (a topic alias, a
//! delivery's PUBLISH). A shared subscription `$share/GROUP/FILTER` is a [`TopicFilter`] too (it is
//! what the client subscribed and unsubscribes with, what the session keeps and the store writes,
//! and what the policy decides on, stripping `$share/GROUP/` itself); [`TopicFilter::share`] splits
//! it into its group and its inner filter, a [`TopicFilterRef`].
//!
//! On top of [`super::validate_topic`] / [`super::validate_filter`] (Mosquitto's checks, which the
//! policy applies to the acl file and to every decision), these types refuse what MQTT itself
//! forbids in a topic on the wire: U+0000 (MQTT-4.7.3-2), and a malformed `$share` form
//! (MQTT-4.8.2-1, MQTT-4.8.2-2).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{validate_filter, validate_topic, FilterError, TopicError};

/// The prefix of a shared subscription's filter.
pub const SHARE_PREFIX: &str = "$share/";

/// A topic name a message can be published to: not empty, no `+` or `#`, at most
/// [`super::MAX_SLASHES`] `/`, at most [`super::MAX_LEN`] bytes, no U+0000.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `topic` with the grammar and keeps it.
    pub fn new(topic: &str) -> Result<TopicName, TopicError> {
        if has_nul(topic) {
            return Err(TopicError::Nul);
        }
        validate_topic(topic)?;
        Ok(TopicName(Arc::from(topic)))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A topic filter a client can subscribe with: [`super::validate_filter`]'s grammar (wildcards as
/// whole levels, `#` last, at most [`super::MAX_SLASHES`] `/`), no U+0000, and, when it starts with
/// `$share/`, a well-formed `$share/GROUP/FILTER` (GROUP not empty and without wildcards, FILTER
/// not empty); `$share` alone is refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(Arc<str>);

impl TopicFilter {
    /// Checks `filter` with the grammar and keeps it.
    pub fn new(filter: &str) -> Result<TopicFilter, FilterError> {
        if has_nul(filter) {
            return Err(FilterError::Nul);
        }
        validate_filter(filter)?;
        if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
            match rest.split_once('/') {
                Some((group, _)) if super::has_wildcard(group) => {
                    return Err(FilterError::ShareNameWildcard)
                }
                Some((group, inner)) if !group.is_empty() && !inner.is_empty() => {}
                _ => return Err(FilterError::ShareIncomplete),
            }
        } else if filter == "$share" {
            return Err(FilterError::ShareAlone);
        }
        Ok(TopicFilter(Arc::from(filter)))
    }

    /// The filter as text (for a shared subscription, the whole `$share/GROUP/FILTER`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter as a borrowed [`TopicFilterRef`] (taken as it is: `$share/...` is not split).
    pub fn view(&self) -> TopicFilterRef<'_> {
        TopicFilterRef(&self.0)
    }

    /// `$share/GROUP/FILTER` as `(GROUP, FILTER)`; `None` for a filter that is not shared.
    pub fn share(&self) -> Option<(&str, TopicFilterRef<'_>)> {
        let (group, inner) = self.0.strip_prefix(SHARE_PREFIX)?.split_once('/')?;
        // The grammar accepted the whole filter, so its inner part is a filter too: the same
        // levels, fewer of them, and not empty.
        Some((group, TopicFilterRef(inner)))
    }

    /// `true` for `$share/GROUP/FILTER`.
    pub fn is_shared(&self) -> bool {
        self.0.starts_with(SHARE_PREFIX)
    }
}

/// A borrowed, validated topic filter: a whole [`TopicFilter`] ([`TopicFilter::view`]) or the
/// FILTER of a shared one ([`TopicFilter::share`]). Made only from those, so it is always valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilterRef<'a>(&'a str);

impl<'a> TopicFilterRef<'a> {
    /// The filter as text, for as long as the filter it was borrowed from.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

fn has_nul(s: &str) -> bool {
    memchr::memchr(0, s.as_bytes()).is_some()
}

macro_rules! text_impls {
    ($ty:ty, $err:ty) => {
        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                *self.0 == *other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                *self.0 == **other
            }
        }
        impl PartialEq<String> for $ty {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = $err;
            fn try_from(s: &str) -> Result<Self, $err> {
                <$ty>::new(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, $err> {
                <$ty>::new(&s)
            }
        }
        impl From<$ty> for String {
            fn from(t: $ty) -> String {
                t.0.as_ref().to_owned()
            }
        }
    };
}

text_impls!(TopicName, TopicError);
text_impls!(TopicFilter, FilterError);

impl Deref for TopicFilterRef<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl fmt::Display for TopicFilterRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for TopicFilterRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl<'a> From<&'a TopicFilter> for TopicFilterRef<'a> {
    fn from(f: &'a TopicFilter) -> TopicFilterRef<'a> {
        f.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_name_is_what_the_grammar_accepts() {
        for ok in [
            "a",
            "a/b",
            "/",
            "a//b",
            "$SYS/x",
            "a b",
            "colombia/cundinamarca/cajica/user1",
        ] {
            let t = TopicName::new(ok).expect(ok);
            assert_eq!(t.as_str(), ok);
            assert_eq!(t, ok);
        }
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        for wild in ["+", "#", "a/+", "a/#", "a+b", "x#"] {
            assert_eq!(TopicName::new(wild), Err(TopicError::Wildcard), "{wild}");
        }
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::Nul));
        assert_eq!(
            TopicName::new(&"a".repeat(65_536)),
            Err(TopicError::TooLong)
        );
        assert!(TopicName::new(&"a".repeat(65_535)).is_ok());
    }

    #[test]
    fn levels_at_the_boundary_of_the_grammar() {
        // At most 200 `/`: 201 levels are a topic and a filter, 202 are not (CVE-2019-11779).
        let levels = |n: usize| vec!["l"; n].join("/");
        assert_eq!(super::super::level_count(&levels(201)), 201);
        assert!(TopicName::new(&levels(200)).is_ok());
        assert!(TopicName::new(&levels(201)).is_ok());
        assert_eq!(TopicName::new(&levels(202)), Err(TopicError::TooManyLevels));
        assert!(TopicFilter::new(&levels(201)).is_ok());
        assert_eq!(
            TopicFilter::new(&levels(202)),
            Err(FilterError::TooManyLevels)
        );
        assert!(TopicName::new(&"/".repeat(200)).is_ok());
        assert_eq!(
            TopicName::new(&"/".repeat(201)),
            Err(TopicError::TooManyLevels)
        );
        assert!(TopicFilter::new(&format!("{}#", "+/".repeat(200))).is_ok());
        assert_eq!(
            TopicFilter::new(&format!("{}#", "+/".repeat(201))),
            Err(FilterError::TooManyLevels)
        );
        // The same limit as the policy's own checks, by construction.
        for n in [199, 200, 201, 202, 203] {
            let t = levels(n);
            assert_eq!(
                TopicName::new(&t).is_ok(),
                validate_topic(&t).is_ok(),
                "{n}"
            );
            assert_eq!(
                TopicFilter::new(&t).is_ok(),
                validate_filter(&t).is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn a_filter_is_what_the_grammar_accepts() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+/+/user1",
            "a//b",
            "/",
            "$SYS/#",
            "+/#",
            "a/b",
        ] {
            assert_eq!(TopicFilter::new(ok).expect(ok).as_str(), ok);
        }
        assert_eq!(TopicFilter::new(""), Err(FilterError::Empty));
        assert_eq!(TopicFilter::new("a/#/b"), Err(FilterError::HashNotLast));
        assert_eq!(TopicFilter::new("#/a"), Err(FilterError::HashNotLast));
        assert_eq!(TopicFilter::new("a#"), Err(FilterError::HashNotLast));
        assert_eq!(
            TopicFilter::new("a/b+"),
            Err(FilterError::PlusNotWholeLevel)
        );
        assert_eq!(TopicFilter::new("a/\0"), Err(FilterError::Nul));
        assert_eq!(
            TopicFilter::new(&"a".repeat(65_536)),
            Err(FilterError::TooLong)
        );
    }

    #[test]
    fn shared_forms() {
        let f = TopicFilter::new("$share/g/a/+/#").unwrap();
        assert!(f.is_shared());
        let (group, inner) = f.share().unwrap();
        assert_eq!((group, inner.as_str()), ("g", "a/+/#"));
        assert_eq!(f.view().as_str(), "$share/g/a/+/#");
        let plain = TopicFilter::new("a/+").unwrap();
        assert!(!plain.is_shared() && plain.share().is_none());
        assert!(TopicFilter::new("$sharefoo/a").unwrap().share().is_none());
        assert!(TopicFilter::new("$share/g/#").is_ok());
        assert!(TopicFilter::new("$share/g//").is_ok());
        assert_eq!(TopicFilter::new("$share"), Err(FilterError::ShareAlone));
        for incomplete in ["$share/", "$share/g", "$share/g/", "$share//a"] {
            assert_eq!(
                TopicFilter::new(incomplete),
                Err(FilterError::ShareIncomplete),
                "{incomplete}"
            );
        }
        // A wildcard in the group: `+`/`#` sharing a level is refused by the filter grammar first.
        assert_eq!(
            TopicFilter::new("$share/+/a"),
            Err(FilterError::ShareNameWildcard)
        );
        assert_eq!(
            TopicFilter::new("$share/#/a"),
            Err(FilterError::HashNotLast)
        );
        assert_eq!(
            TopicFilter::new("$share/g+/a"),
            Err(FilterError::PlusNotWholeLevel)
        );
        // `$share/...` is not a topic name: only its wildcards would make it one or not.
        assert!(TopicName::new("$share/g/a").is_ok());
    }

    #[test]
    fn the_types_compare_and_print_as_their_text() {
        let t = TopicName::try_from("a/b").unwrap();
        assert_eq!(t.to_string(), "a/b");
        assert_eq!(format!("{t:?}"), "\"a/b\"");
        assert_eq!(t.len(), 3, "derefs to str");
        let cloned = t.clone();
        assert!(Arc::ptr_eq(&t.0, &cloned.0), "a clone shares the text");
        let mut map = std::collections::HashMap::new();
        map.insert(TopicFilter::new("a/+").unwrap(), 1);
        assert_eq!(map.get("a/+"), Some(&1), "looked up by str");
        assert!(TopicFilter::try_from(String::from("a/#/b")).is_err());
    }
}
