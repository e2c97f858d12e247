//! The subscription trie: topic filters by level, each node holding the clients subscribed with
//! exactly that filter. Matching a topic walks one path per `+` branch, so its cost depends on the
//! topic's depth and the wildcards present, not on the number of subscriptions.

use std::collections::HashMap;
use std::sync::Arc;

use super::codec::SubOptions;
use crate::policy::topic::{TopicFilterRef, TopicName};

/// One client's subscription with one filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubEntry {
    /// The options it was made with.
    pub options: SubOptions,
    /// Its MQTT 5 subscription identifier.
    pub id: Option<u32>,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    /// Subscribers whose filter ends here (each client id is one `Arc` for all of that client's
    /// subscriptions: see [`SubTree::for_each_client`]).
    here: HashMap<Arc<str>, SubEntry>,
    /// Subscribers whose filter ends with `#` below this node.
    hash: HashMap<Arc<str>, SubEntry>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.here.is_empty()
            && self.hash.is_empty()
    }
}

/// All subscriptions of all sessions.
#[derive(Debug, Default)]
pub struct SubTree {
    root: Node,
    count: usize,
    /// Every client with a subscription: its id, which all its entries in the tree share, and its
    /// number of subscriptions.
    clients: HashMap<Arc<str>, usize>,
    /// Clients with more than one subscription.
    several: usize,
}

impl SubTree {
    /// Adds or replaces `client`'s subscription with `filter`; `true` if it is new.
    pub fn insert(&mut self, filter: TopicFilterRef<'_>, client: &str, entry: SubEntry) -> bool {
        let mut node = &mut self.root;
        let mut hash = false;
        for level in filter.as_str().split('/') {
            match level {
                "#" => {
                    hash = true;
                    break;
                }
                "+" => node = node.plus.get_or_insert_with(Box::default),
                _ => node = node.children.entry(level.into()).or_default(),
            }
        }
        let set = if hash { &mut node.hash } else { &mut node.here };
        if let Some(e) = set.get_mut(client) {
            *e = entry;
            return false;
        }
        let id = match self.clients.get_key_value(client) {
            Some((id, _)) => Arc::clone(id),
            None => Arc::from(client),
        };
        set.insert(Arc::clone(&id), entry);
        let n = self.clients.entry(id).or_default();
        *n += 1;
        if *n == 2 {
            self.several += 1;
        }
        self.count += 1;
        true
    }

    /// Removes `client`'s subscription with `filter`; `true` if there was one.
    pub fn remove(&mut self, filter: TopicFilterRef<'_>, client: &str) -> bool {
        let levels: Vec<&str> = filter.as_str().split('/').collect();
        let removed = remove_at(&mut self.root, &levels, client);
        if removed {
            self.count -= 1;
            if let Some(n) = self.clients.get_mut(client) {
                *n -= 1;
                match *n {
                    0 => {
                        self.clients.remove(client);
                    }
                    1 => self.several -= 1,
                    _ => {}
                }
            }
        }
        removed
    }

    /// `true` when some client has more than one subscription, so that several of
    /// [`SubTree::for_each_client`]'s calls for one topic may be for the same client.
    pub fn has_overlaps(&self) -> bool {
        self.several > 0
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` without subscriptions.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f(client, entry)` for every subscription matching `topic` (one call per matching filter),
    /// applying the `$` rule: wildcards at the first level do not match topics starting with `$`
    /// (MQTT-4.7.2-1).
    pub fn for_each_match(&self, topic: &TopicName, mut f: impl FnMut(&str, SubEntry)) {
        self.for_each_client(topic, |c, e| f(c, e));
    }

    /// [`SubTree::for_each_match`], with each client id as the tree holds it: one `Arc` for all of
    /// a client's subscriptions, which a caller keeps without allocating and compares by address
    /// ([`Arc::ptr_eq`]).
    pub fn for_each_client(&self, topic: &TopicName, mut f: impl FnMut(&Arc<str>, SubEntry)) {
        let topic = topic.as_str();
        let dollar = topic.starts_with('$');
        walk(&self.root, topic.split('/'), 0, dollar, &mut f);
    }
}

/// Visits `node` with `levels`, the topic's levels below it (an iterator, cloned at each branch:
/// no allocation per publish).
fn walk(
    node: &Node,
    mut levels: std::str::Split<'_, char>,
    depth: usize,
    dollar: bool,
    f: &mut impl FnMut(&Arc<str>, SubEntry),
) {
    let wildcards_ok = !(dollar && depth == 0);
    if wildcards_ok {
        // `a/#` also matches `a` itself (MQTT-4.7.1-2): `#` at this node matches the rest, even empty.
        for (c, e) in &node.hash {
            f(c, *e);
        }
    }
    let Some(level) = levels.next() else {
        for (c, e) in &node.here {
            f(c, *e);
        }
        return;
    };
    if let Some(child) = node.children.get(level) {
        walk(child, levels.clone(), depth + 1, dollar, f);
    }
    if wildcards_ok {
        if let Some(plus) = &node.plus {
            walk(plus, levels, depth + 1, dollar, f);
        }
    }
}

fn remove_at(node: &mut Node, levels: &[&str], client: &str) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return node.here.remove(client).is_some();
    };
    match *level {
        "#" => node.hash.remove(client).is_some(),
        "+" => {
            let Some(plus) = node.plus.as_mut() else {
                return false;
            };
            let removed = remove_at(plus, rest, client);
            if plus.is_empty() {
                node.plus = None;
            }
            removed
        }
        _ => {
            let Some(child) = node.children.get_mut(*level) else {
                return false;
            };
            let removed = remove_at(child, rest, client);
            if child.is_empty() {
                node.children.remove(*level);
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::QoS;
    use crate::policy::topic::TopicFilter;

    fn f(filter: &str) -> TopicFilter {
        TopicFilter::new(filter).unwrap()
    }

    fn entry() -> SubEntry {
        SubEntry {
            options: SubOptions::qos(QoS::AtMostOnce),
            id: None,
        }
    }

    fn matches(t: &SubTree, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.for_each_match(&TopicName::new(topic).unwrap(), |c, _| {
            out.push(c.to_owned())
        });
        out.sort();
        out
    }

    #[test]
    fn wildcards_match_as_the_standard_says() {
        let mut t = SubTree::default();
        t.insert(f("a/+/c").view(), "plus", entry());
        t.insert(f("a/#").view(), "hash", entry());
        t.insert(f("#").view(), "all", entry());
        t.insert(f("a/b/c").view(), "exact", entry());
        assert_eq!(matches(&t, "a/b/c"), ["all", "exact", "hash", "plus"]);
        assert_eq!(matches(&t, "a"), ["all", "hash"]);
        assert_eq!(matches(&t, "b"), ["all"]);
    }

    #[test]
    fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics_at_the_first_level() {
        let mut t = SubTree::default();
        t.insert(f("#").view(), "all", entry());
        t.insert(f("+/x").view(), "plus", entry());
        t.insert(f("$SYS/#").view(), "sys", entry());
        assert_eq!(matches(&t, "$SYS/x"), ["sys"]);
    }

    #[test]
    fn removal_prunes_and_counts() {
        let mut t = SubTree::default();
        assert!(t.insert(f("a/+/c").view(), "x", entry()));
        assert!(!t.insert(f("a/+/c").view(), "x", entry()));
        assert_eq!(t.len(), 1);
        assert!(t.remove(f("a/+/c").view(), "x"));
        assert!(!t.remove(f("a/+/c").view(), "x"));
        assert!(t.is_empty());
        assert!(t.root.is_empty());
        assert!(t.clients.is_empty());
    }

    #[test]
    fn a_clients_subscriptions_share_its_id_and_overlaps_are_counted() {
        let mut t = SubTree::default();
        t.insert(f("a/b").view(), "x", entry());
        t.insert(f("a/b").view(), "y", entry());
        assert!(!t.has_overlaps());
        t.insert(f("a/+").view(), "x", entry());
        t.insert(f("#").view(), "x", entry());
        assert!(t.has_overlaps());
        let mut ids = Vec::new();
        t.for_each_client(&TopicName::new("a/b").unwrap(), |c, _| {
            if &**c == "x" {
                ids.push(Arc::clone(c))
            }
        });
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|c| Arc::ptr_eq(c, &ids[0])));
        t.remove(f("#").view(), "x");
        assert!(t.has_overlaps());
        t.remove(f("a/+").view(), "x");
        assert!(!t.has_overlaps());
        t.remove(f("a/b").view(), "x");
        t.remove(f("a/b").view(), "y");
        assert!(t.clients.is_empty() && t.is_empty());
    }
}
