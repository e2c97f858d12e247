//! Retained messages: the last retained message of every topic, in a tree of topic levels.
//!
//! A SUBSCRIBE walks the tree along its filter (`+` takes every child, `#` a whole subtree), so its cost
//! follows what it matches, not how many topics are retained.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::session::Message;
use crate::policy::topic::TopicFilterRef;

/// One topic level: the message retained on the topic ending here, and the levels below.
#[derive(Debug, Default)]
struct Level {
    message: Option<Arc<Message>>,
    children: HashMap<Box<str>, Level>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.message.is_none() && self.children.is_empty()
    }

    /// Removes the message at `levels` below this level; `true` if one was removed. Prunes levels left
    /// empty.
    fn remove(&mut self, levels: &[&str]) -> bool {
        let Some((first, rest)) = levels.split_first() else {
            return self.message.take().is_some();
        };
        let Some(child) = self.children.get_mut(*first) else {
            return false;
        };
        let removed = child.remove(rest);
        if child.is_empty() {
            self.children.remove(*first);
        }
        removed
    }

    /// Collects the unexpired messages whose topic the filter levels `filter` match, below this level.
    /// `top`: this is the root, where wildcards skip topics starting with `$`.
    fn collect(&self, filter: &[&str], top: bool, now: Instant, out: &mut Vec<Arc<Message>>) {
        let Some((first, rest)) = filter.split_first() else {
            push_live(&self.message, now, out);
            return;
        };
        let visible = |name: &str| !(top && name.starts_with('$'));
        match *first {
            "#" => {
                // `a/#` matches `a` itself, and everything below.
                if !top {
                    push_live(&self.message, now, out);
                }
                for (name, child) in &self.children {
                    if visible(name) {
                        child.collect_all(now, out);
                    }
                }
            }
            "+" => {
                for (name, child) in &self.children {
                    if visible(name) {
                        child.collect(rest, false, now, out);
                    }
                }
            }
            literal => {
                if let Some(child) = self.children.get(literal) {
                    child.collect(rest, false, now, out);
                }
            }
        }
    }

    fn collect_all(&self, now: Instant, out: &mut Vec<Arc<Message>>) {
        push_live(&self.message, now, out);
        for child in self.children.values() {
            child.collect_all(now, out);
        }
    }

    /// Drops expired messages below this level; returns how many were dropped. Prunes empty levels.
    fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        if self.message.as_ref().is_some_and(|m| m.expired(now)) {
            self.message = None;
            dropped += 1;
        }
        self.children.retain(|_, child| {
            dropped += child.expire(now);
            !child.is_empty()
        });
        dropped
    }
}

fn push_live(message: &Option<Arc<Message>>, now: Instant, out: &mut Vec<Arc<Message>>) {
    if let Some(m) = message {
        if !m.expired(now) {
            out.push(Arc::clone(m));
        }
    }
}

/// The retained store.
#[derive(Debug, Default)]
pub struct Retained {
    root: Level,
    count: usize,
}

impl Retained {
    /// Stores `msg` as its topic's retained message; an empty payload clears it (MQTT-3.3.1-10).
    pub fn set(&mut self, msg: &Arc<Message>) {
        let levels: Vec<&str> = msg.topic.split('/').collect();
        if msg.payload.is_empty() {
            if self.root.remove(&levels) {
                self.count -= 1;
            }
            return;
        }
        let mut level = &mut self.root;
        for name in levels {
            level = level.children.entry(name.into()).or_default();
        }
        if level.message.replace(Arc::clone(msg)).is_none() {
            self.count += 1;
        }
    }

    /// The unexpired retained messages whose topic `filter` matches (with the `$` rule).
    pub fn matching(&self, filter: TopicFilterRef<'_>, now: Instant) -> Vec<Arc<Message>> {
        let levels: Vec<&str> = filter.as_str().split('/').collect();
        let mut out = Vec::new();
        self.root.collect(&levels, true, now, &mut out);
        out
    }

    /// Every retained message, expired or not.
    pub fn all(&self) -> Vec<Arc<Message>> {
        fn walk(level: &Level, out: &mut Vec<Arc<Message>>) {
            out.extend(level.message.iter().cloned());
            for child in level.children.values() {
                walk(child, out);
            }
        }
        let mut out = Vec::with_capacity(self.count);
        walk(&self.root, &mut out);
        out
    }

    /// Drops expired messages.
    pub fn expire(&mut self, now: Instant) {
        self.count -= self.root.expire(now);
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::topic;
    use proptest::prelude::*;

    fn topics() -> impl Strategy<Value = Vec<String>> {
        let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$x"), Just("c")];
        // A topic is never empty (the codec refuses one), but may have empty levels.
        let topic = prop::collection::vec(level, 1..4)
            .prop_map(|l| l.join("/"))
            .prop_filter("not empty", |t| !t.is_empty());
        prop::collection::vec(topic, 0..20)
    }

    fn filter() -> impl Strategy<Value = String> {
        let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$x"), Just("+")];
        (prop::collection::vec(level, 1..4), any::<bool>()).prop_map(|(l, hash)| {
            let mut f = l.join("/");
            if hash {
                f.push_str("/#");
            }
            f
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The tree answers exactly what matching every stored topic one by one answers.
        #[test]
        fn the_tree_matches_like_topic_matches(
            stored in topics(),
            cleared in topics(),
            filters in prop::collection::vec(prop_oneof![filter(), Just("#".to_owned())], 1..6),
        ) {
            let mut store = Retained::default();
            let mut plain: HashMap<String, ()> = HashMap::new();
            for t in &stored {
                store.set(&Arc::new(Message::for_tests(t, b"x")));
                plain.insert(t.clone(), ());
            }
            for t in &cleared {
                store.set(&Arc::new(Message::for_tests(t, b"")));
                plain.remove(t);
            }
            prop_assert_eq!(store.len(), plain.len());
            let now = Instant::now();
            for f in &filters {
                // The broker has only filters the grammar accepted (an empty one is not).
                let Ok(tf) = topic::TopicFilter::new(f) else { continue };
                let mut got: Vec<String> =
                    store.matching(tf.view(), now).iter().map(|m| m.topic.to_string()).collect();
                got.sort();
                let mut want: Vec<String> =
                    plain.keys().filter(|t| topic::matches(f, t)).cloned().collect();
                want.sort();
                prop_assert_eq!(got, want, "filter {}", f);
            }
        }
    }
}
