//! Shared subscriptions (MQTT 5.0 §4.8.2, also accepted from MQTT 3.1.1 clients as Mosquitto does):
//! `$share/GROUP/FILTER` makes its session a member of the group identified by GROUP *and* FILTER;
//! every message FILTER matches goes to exactly one member of each such group.
//!
//! The member is chosen round-robin, as Mosquitto 2.0 does (`subs__shared_process` in its
//! `src/subs.c`): the member at the head of the group's rotation gets the message and moves to the
//! tail, whatever happens to the delivery next. So, as in Mosquitto:
//! * a member whose session is offline keeps its turn: a QoS 1/2 message is queued for it, a QoS 0
//!   message is lost (the router's `push` decides, as for any offline session);
//! * a member whose user may not read the topic keeps its turn too: the message is withheld from
//!   that member (and audited) and *not* offered to another member.
//!
//! This module only keeps the groups and rotates them; the router checks access and delivers.

use std::collections::{HashMap, VecDeque};

use super::subs::{SubEntry, SubTree};
use crate::policy::topic::{TopicFilter, TopicName};

/// One member of a group.
#[derive(Debug)]
struct Member {
    client: Box<str>,
    entry: SubEntry,
}

/// All shared subscriptions.
#[derive(Debug, Default)]
pub struct SharedSubs {
    /// FILTER → the groups subscribed with it, each keyed by its whole `$share/GROUP/FILTER`:
    /// the matching index of ordinary subscriptions, reused with groups in place of clients.
    index: SubTree,
    /// `$share/GROUP/FILTER` → its members in rotation order (the next to receive at the front).
    groups: HashMap<TopicFilter, VecDeque<Member>>,
}

impl SharedSubs {
    /// Makes `client` a member of the group of `shared_filter` (`$share/GROUP/FILTER`), at the end
    /// of the rotation; a member subscribing again keeps its place and gets the new options.
    /// `true` if it was not a member. A filter that is not shared is ignored (`false`).
    pub fn insert(&mut self, shared_filter: &TopicFilter, client: &str, entry: SubEntry) -> bool {
        let Some((_, filter)) = shared_filter.share() else {
            return false;
        };
        let members = match self.groups.get_mut(shared_filter) {
            Some(members) => members,
            None => {
                self.index.insert(filter, shared_filter, entry);
                self.groups.entry(shared_filter.clone()).or_default()
            }
        };
        if let Some(m) = members.iter_mut().find(|m| *m.client == *client) {
            m.entry = entry;
            return false;
        }
        members.push_back(Member {
            client: client.into(),
            entry,
        });
        true
    }

    /// Removes `client` from the group of `shared_filter`; the group goes when its last member
    /// does. `true` if it was a member.
    pub fn remove(&mut self, shared_filter: &TopicFilter, client: &str) -> bool {
        let Some(members) = self.groups.get_mut(shared_filter) else {
            return false;
        };
        let Some(at) = members.iter().position(|m| *m.client == *client) else {
            return false;
        };
        members.remove(at);
        if members.is_empty() {
            self.groups.remove(shared_filter);
            if let Some((_, filter)) = shared_filter.share() {
                self.index.remove(filter, shared_filter);
            }
        }
        true
    }

    /// For each group whose FILTER matches `topic` (with the `$` rule of ordinary subscriptions),
    /// calls `f(client, entry)` for the member whose turn it is, then moves that member to the end
    /// of the rotation. Returns the number of groups that matched.
    pub fn choose(&mut self, topic: &TopicName, mut f: impl FnMut(&str, SubEntry)) -> usize {
        if self.groups.is_empty() {
            return 0;
        }
        let groups = &mut self.groups;
        let mut matched = 0;
        self.index.for_each_match(topic, |group, _| {
            let Some(members) = groups.get_mut(group) else {
                return;
            };
            let Some(member) = members.pop_front() else {
                return;
            };
            matched += 1;
            f(&member.client, member.entry);
            members.push_back(member);
        });
        matched
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// `true` without any group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The members of the group of `shared_filter`, next to receive first.
    pub fn members(&self, shared_filter: &str) -> Vec<&str> {
        self.groups
            .get(shared_filter)
            .map(|m| m.iter().map(|m| &*m.client).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::{QoS, SubOptions};

    fn f(filter: &str) -> TopicFilter {
        TopicFilter::new(filter).unwrap()
    }

    fn entry(qos: QoS) -> SubEntry {
        SubEntry {
            options: SubOptions::qos(qos),
            id: None,
        }
    }

    fn chosen(s: &mut SharedSubs, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        s.choose(&TopicName::new(topic).unwrap(), |c, _| {
            out.push(c.to_owned())
        });
        out
    }

    #[test]
    fn the_group_is_named_by_its_share_name_and_its_filter() {
        let split = |s| f(s).share().map(|(g, x)| (g.to_owned(), x.to_string()));
        assert_eq!(split("$share/g/a/#"), Some(("g".into(), "a/#".into())));
        assert_eq!(split("a/#"), None);
        assert_eq!(split("$sharefoo/a"), None);
        let mut s = SharedSubs::default();
        s.insert(&f("$share/g/a/#"), "x", entry(QoS::AtMostOnce));
        s.insert(&f("$share/g/a/+"), "y", entry(QoS::AtMostOnce));
        s.insert(&f("$share/h/a/#"), "z", entry(QoS::AtMostOnce));
        assert_eq!(s.len(), 3);
        let mut got = chosen(&mut s, "a/b");
        got.sort();
        assert_eq!(got, ["x", "y", "z"], "one member of each matching group");
    }

    #[test]
    fn members_take_turns_and_a_resubscription_keeps_its_place() {
        let mut s = SharedSubs::default();
        assert!(s.insert(&f("$share/g/t"), "a", entry(QoS::AtMostOnce)));
        assert!(s.insert(&f("$share/g/t"), "b", entry(QoS::AtMostOnce)));
        assert!(!s.insert(&f("$share/g/t"), "a", entry(QoS::AtLeastOnce)));
        let turns: Vec<String> = (0..4).flat_map(|_| chosen(&mut s, "t")).collect();
        assert_eq!(turns, ["a", "b", "a", "b"]);
        let mut qos = None;
        s.choose(&TopicName::new("t").unwrap(), |_, e| {
            qos = Some(e.options.qos)
        });
        assert_eq!(qos, Some(QoS::AtLeastOnce), "the new options apply");
        assert!(chosen(&mut s, "other").is_empty());
    }

    #[test]
    fn the_last_member_leaving_removes_the_group() {
        let mut s = SharedSubs::default();
        s.insert(&f("$share/g/t/#"), "a", entry(QoS::AtMostOnce));
        s.insert(&f("$share/g/t/#"), "b", entry(QoS::AtMostOnce));
        assert!(s.remove(&f("$share/g/t/#"), "a"));
        assert!(!s.remove(&f("$share/g/t/#"), "a"));
        assert_eq!(chosen(&mut s, "t/x"), ["b"]);
        assert!(s.remove(&f("$share/g/t/#"), "b"));
        assert!(s.is_empty() && s.index.is_empty());
        assert_eq!(s.choose(&TopicName::new("t/x").unwrap(), |_, _| {}), 0);
    }

    #[test]
    fn mqtt_4_7_2_1_wildcards_of_shared_filters_do_not_match_dollar_topics() {
        let mut s = SharedSubs::default();
        s.insert(&f("$share/g/#"), "a", entry(QoS::AtMostOnce));
        s.insert(&f("$share/g/$SYS/#"), "b", entry(QoS::AtMostOnce));
        assert_eq!(chosen(&mut s, "$SYS/x"), ["b"]);
    }
}
