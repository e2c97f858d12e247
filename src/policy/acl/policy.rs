//! [`Policy`]: an acl file compiled for fast decisions.

use rustc_hash::FxHashMap as HashMap;

use super::parse::{parse_acl, AclError, AclFile};
use super::rule::{Rule, RuleList};
use super::trie::{Arena, NodeId, Terminal, Walk};
use crate::policy::decision::{Access, ClientRef, Decision, Reason, RuleId};
use crate::policy::topic;

/// Rules that apply to a client, with their filters after substitution.
pub(crate) type Applicable = Vec<(RuleId, String)>;

/// An acl file, compiled. Immutable once built: swap the whole value (for example behind an `Arc`) to reload.
#[derive(Debug)]
pub struct Policy {
    path: String,
    rules: Vec<Rule>,
    arena: Arena,
    anonymous: Option<NodeId>,
    users: HashMap<Box<str>, NodeId>,
    patterns: Option<NodeId>,
}

impl Policy {
    /// Parses and compiles acl file `bytes`, loaded under the name `path`.
    pub fn from_acl(path: &str, bytes: &[u8]) -> Result<Policy, AclError> {
        Ok(Policy::compile(parse_acl(path, bytes)?))
    }

    /// Compiles a parsed acl file.
    pub fn compile(file: AclFile) -> Policy {
        let mut arena = Arena::default();
        let mut anonymous = None;
        let mut users: HashMap<Box<str>, NodeId> = HashMap::default();
        let mut patterns = None;
        for (index, rule) in file.rules.iter().enumerate() {
            let id = RuleId(u32::try_from(index).expect("fewer than 2^32 rules"));
            let (root, substitute) = match &rule.list {
                RuleList::Anonymous => (*anonymous.get_or_insert_with(|| arena.new_root()), false),
                RuleList::User(name) => {
                    let root = match users.get(name.as_str()) {
                        Some(root) => *root,
                        None => {
                            let root = arena.new_root();
                            users.insert(name.as_str().into(), root);
                            root
                        }
                    };
                    (root, false)
                }
                RuleList::Pattern => (*patterns.get_or_insert_with(|| arena.new_root()), true),
            };
            arena.insert(root, &rule.filter, substitute, id, rule.permission);
        }
        Policy {
            path: file.path,
            rules: file.rules,
            arena,
            anonymous,
            users,
            patterns,
        }
    }

    /// The name the acl file was loaded under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Every rule, in file order; [`RuleId`] indexes this slice.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule a [`RuleId`] names.
    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.index()]
    }

    /// `true` when the file has at least one `pattern` line.
    pub fn has_patterns(&self) -> bool {
        self.patterns.is_some()
    }

    /// The root of the client's own list: the anonymous list without a username, else the user's block.
    fn own_list(&self, username: Option<&str>) -> Option<NodeId> {
        match username {
            None => self.anonymous,
            Some(name) => self.users.get(name).copied(),
        }
    }

    /// Decides `access` to `topic` (a concrete topic for read/write, a filter for subscribe/unsubscribe)
    /// for `client`, exactly as Mosquitto 2.0 with this acl file would, plus our subscription check.
    ///
    /// Read and write decisions allocate nothing.
    pub fn decide(&self, client: ClientRef<'_>, topic: &str, access: Access) -> Decision {
        if let Some(decision) = broker_rules(topic, access) {
            return decision;
        }
        match access {
            Access::Read | Access::Write => self.decide_topic(client, topic, access),
            Access::Subscribe => self.decide_subscribe(client, topic),
            Access::Unsubscribe => Decision::allow(Reason::UnsubscribeUnchecked),
        }
    }

    fn decide_topic(&self, client: ClientRef<'_>, topic: &str, access: Access) -> Decision {
        if topic::validate_topic(topic).is_err() {
            return Decision::deny(Reason::InvalidTopic);
        }
        let own = self.own_list(client.username);
        if own.is_none() && self.patterns.is_none() {
            return Decision::deny(Reason::NoRulesForClient);
        }
        let walk = Walk {
            topic,
            username: client.username,
            client_id: client.client_id,
        };
        if let Some(root) = own {
            let mut found = Terminal::default();
            self.arena.matching(root, &walk, &mut found);
            if let Some(decision) = verdict(&found, access) {
                return decision;
            }
        }
        let Some(root) = self.patterns else {
            return Decision::deny(Reason::NoRuleMatched);
        };
        if let Some(reason) = dangerous_identity(client) {
            return Decision::deny(reason);
        }
        let mut found = Terminal::default();
        self.arena.matching(root, &walk, &mut found);
        verdict(&found, access).unwrap_or(Decision::deny(Reason::NoRuleMatched))
    }

    /// The rules that apply to `client`, own list first, as (id, filter after substitution).
    /// Patterns with `%u` are left out for a client without username. Allocates.
    pub(crate) fn applicable_rules(&self, client: ClientRef<'_>) -> (Applicable, Applicable) {
        let mut own = Vec::new();
        let mut patterns = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let id = RuleId(index as u32);
            match &rule.list {
                RuleList::Anonymous if client.username.is_none() => {
                    own.push((id, rule.filter.clone()))
                }
                RuleList::User(name) if client.username == Some(name.as_str()) => {
                    own.push((id, rule.filter.clone()))
                }
                RuleList::Pattern if !(rule.uses_username() && client.username.is_none()) => {
                    patterns.push((
                        id,
                        super::rule::substitute(&rule.filter, client.username, client.client_id),
                    ))
                }
                _ => {}
            }
        }
        (own, patterns)
    }

    /// Our addition to Mosquitto: refuse a subscription when no topic it matches could ever be read.
    /// Sound, not complete: every filter that could deliver something is granted.
    fn decide_subscribe(&self, client: ClientRef<'_>, filter: &str) -> Decision {
        if topic::validate_filter(filter).is_err() {
            return Decision::deny(Reason::InvalidFilter);
        }
        // `$share/GROUP/FILTER` delivers the topics FILTER matches.
        let filter = match filter.strip_prefix("$share/") {
            Some(rest) => match rest.split_once('/') {
                Some((_, f)) if !f.is_empty() => f,
                _ => return Decision::deny(Reason::InvalidFilter),
            },
            None => filter,
        };
        let (own, patterns) = self.applicable_rules(client);
        let read_rule = |list: &[(RuleId, String)]| {
            list.iter()
                .find(|(id, f)| {
                    self.rule(*id).permission.grants(Access::Read)
                        && topic::filters_intersect(f, filter)
                })
                .map(|(id, _)| *id)
        };
        let covering_deny = |list: &[(RuleId, String)]| {
            list.iter()
                .find(|(id, f)| {
                    self.rule(*id).permission.is_deny() && topic::filter_covers(f, filter)
                })
                .map(|(id, _)| *id)
        };
        if let Some(deny) = covering_deny(&own) {
            return Decision::deny(Reason::SubscriptionDeniedBy(deny));
        }
        if let Some(rule) = read_rule(&own) {
            return Decision::allow(Reason::SubscriptionMayDeliver(rule));
        }
        if patterns.is_empty() || dangerous_identity(client).is_some() {
            return Decision::deny(Reason::SubscriptionNeverDelivers);
        }
        if let Some(deny) = covering_deny(&patterns) {
            return Decision::deny(Reason::SubscriptionDeniedBy(deny));
        }
        match read_rule(&patterns) {
            Some(rule) => Decision::allow(Reason::SubscriptionMayDeliver(rule)),
            None => Decision::deny(Reason::SubscriptionNeverDelivers),
        }
    }

    /// Number of trie nodes (for statistics).
    pub fn node_count(&self) -> usize {
        self.arena.len()
    }

    /// Number of users with a `user` block.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

/// The checks Mosquitto makes before any ACL callback, which no acl file or plugin can override:
/// `$SYS` writes (but for bridge state) and any read or write of `$share...` are denied.
pub fn broker_rules(topic: &str, access: Access) -> Option<Decision> {
    if topic.starts_with("$SYS") && access == Access::Write {
        if topic::matches("$SYS/broker/connection/+/state", topic) {
            return None;
        }
        return Some(Decision::deny(Reason::SysWrite));
    }
    if topic.starts_with("$share") && matches!(access, Access::Read | Access::Write) {
        return Some(Decision::deny(Reason::SharedTopic));
    }
    None
}

/// CVE-2017-7650: with patterns present, a username or client id containing `+` or `#` is denied.
fn dangerous_identity(client: ClientRef<'_>) -> Option<Reason> {
    let dangerous = |s: &str| s.bytes().any(|b| b == b'+' || b == b'#');
    if client.username.is_some_and(dangerous) {
        return Some(Reason::DangerousUsername);
    }
    if dangerous(client.client_id) {
        return Some(Reason::DangerousClientId);
    }
    None
}

/// A list's verdict from the rules that matched: deny first, then a grant of the access.
fn verdict(found: &Terminal, access: Access) -> Option<Decision> {
    if let Some(rule) = found.deny {
        return Some(Decision::deny(Reason::Rule(rule)));
    }
    found
        .granting(access)
        .map(|rule| Decision::allow(Reason::Rule(rule)))
}
