//! [`Policy`]: an acl file compiled for fast decisions.

use rustc_hash::FxHashMap as HashMap;

use super::parse::{parse_acl_as, AclError, AclFile};
use super::rule::{Permission, Rule, RuleList};
use super::subscribe_index::{Looking, Merge, SubscribeIndex, INDEX_FROM};
use super::trie::{Arena, NodeId, Terminal, Walk};
use crate::policy::decision::{Access, ClientRef, Decision, Reason, RuleId};
use crate::policy::semantics::{substitute_whole_levels, Semantics};
use crate::policy::topic;

/// Rules that apply to a client, with their filters after substitution.
pub(crate) type Applicable = Vec<(RuleId, String)>;

/// An acl file, compiled. Immutable once built: swap the whole value (for example behind an `Arc`) to reload.
#[derive(Debug)]
pub struct Policy {
    path: String,
    rules: Vec<Rule>,
    arena: Arena,
    anonymous: Option<List>,
    users: HashMap<Box<str>, List>,
    patterns: Option<List>,
    semantics: Semantics,
}

/// One rule list: its compiled trie, its rules in file order (for explanations, which look at rules one
/// by one) and, for long lists, the index the subscription check uses.
#[derive(Debug)]
struct List {
    root: NodeId,
    /// Mosquitto 2.1's pattern list only: the patterns with `%u` anywhere in them, which apply only to
    /// clients with a username. (On 2.0 `%u` is always substituted, so such a pattern never matches for
    /// a client without one and needs no trie of its own; on 2.1 `%u` inside a level is literal text.)
    username_root: Option<NodeId>,
    rules: Vec<RuleId>,
    subscribe_index: Option<SubscribeIndex>,
}

impl List {
    fn new(arena: &mut Arena) -> List {
        List {
            root: arena.new_root(),
            username_root: None,
            rules: Vec::new(),
            subscribe_index: None,
        }
    }

    /// The rules the subscription check must try for `filter`, in file order.
    fn subscribe_candidates(&self, filter: &str, looking: Looking) -> Merge<'_> {
        match &self.subscribe_index {
            Some(index) => index.candidates(filter, looking),
            None => Merge::whole(&self.rules),
        }
    }
}

impl Policy {
    /// Parses and compiles acl file `bytes`, loaded under the name `path`, to decide as Mosquitto 2.0.
    pub fn from_acl(path: &str, bytes: &[u8]) -> Result<Policy, AclError> {
        Policy::from_acl_as(path, bytes, Semantics::Mosquitto20)
    }

    /// Parses and compiles acl file `bytes`, loaded under the name `path`, to decide as Mosquitto
    /// `semantics`.
    pub fn from_acl_as(path: &str, bytes: &[u8], semantics: Semantics) -> Result<Policy, AclError> {
        Ok(Policy::compile(parse_acl_as(path, bytes, semantics)?))
    }

    /// Compiles a parsed acl file, with the semantics it was parsed with ([`AclFile::semantics`]).
    pub fn compile(file: AclFile) -> Policy {
        Policy::compile_lists(file, |_| true)
    }

    /// Compiles only what decides for clients with `username` (`None`: without one): their own list
    /// and the patterns. For one-shot answers about one client (`mqtt-policy check`), which then need
    /// not build the tries of every other user. Every rule is still kept ([`Policy::rules`], the rule
    /// numbers); decisions and explanations for this client are those of [`Policy::compile`], and this
    /// policy must not be asked about any other username.
    pub fn compile_for(file: AclFile, username: Option<&str>) -> Policy {
        Policy::compile_lists(file, |list| match (list, username) {
            (RuleList::Pattern, _) => true,
            (RuleList::Anonymous, None) => true,
            (RuleList::User(name), Some(user)) => name == user,
            _ => false,
        })
    }

    fn compile_lists(file: AclFile, wanted: impl Fn(&RuleList) -> bool) -> Policy {
        let semantics = file.semantics;
        let mut arena = Arena::new(semantics);
        let mut anonymous: Option<List> = None;
        let mut users: HashMap<Box<str>, List> = HashMap::default();
        let mut patterns: Option<List> = None;
        for (index, rule) in file.rules.iter().enumerate() {
            let id = RuleId(u32::try_from(index).expect("fewer than 2^32 rules"));
            if !wanted(&rule.list) {
                continue;
            }
            let (list, substitute) = match &rule.list {
                RuleList::Anonymous => (
                    anonymous.get_or_insert_with(|| List::new(&mut arena)),
                    false,
                ),
                RuleList::User(name) => {
                    if !users.contains_key(name.as_str()) {
                        users.insert(name.as_str().into(), List::new(&mut arena));
                    }
                    (users.get_mut(name.as_str()).expect("just inserted"), false)
                }
                RuleList::Pattern => (patterns.get_or_insert_with(|| List::new(&mut arena)), true),
            };
            list.rules.push(id);
            let root = if substitute && semantics.whole_level_substitution() && rule.uses_username()
            {
                *list.username_root.get_or_insert_with(|| arena.new_root())
            } else {
                list.root
            };
            arena.insert(root, &rule.filter, substitute, id, rule.permission);
        }
        let rules = &file.rules;
        let index = |list: &mut List, substitute: bool| {
            if list.rules.len() > INDEX_FROM {
                list.subscribe_index = Some(SubscribeIndex::build(
                    &list.rules,
                    |id| &rules[id.index()],
                    substitute,
                ));
            }
        };
        for list in anonymous.iter_mut().chain(users.values_mut()) {
            index(list, false);
        }
        if let Some(list) = patterns.as_mut() {
            index(list, true);
        }
        Policy {
            path: file.path,
            rules: file.rules,
            arena,
            anonymous,
            users,
            patterns,
            semantics,
        }
    }

    /// Which Mosquitto's `acl_file` this policy decides as.
    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    /// Writes pattern `filter` with `%u`/`%c` substituted for `client` into `out` (cleared first), as
    /// this policy's Mosquitto does; `false` when no topic can match it for this client.
    fn substitute_into(&self, out: &mut String, filter: &str, client: ClientRef<'_>) -> bool {
        match self.semantics {
            Semantics::Mosquitto20 => {
                out.clear();
                super::rule::substitute_into(out, filter, client.username, client.client_id);
                true
            }
            Semantics::Mosquitto21 => {
                substitute_whole_levels(out, filter, client.username, client.client_id)
            }
        }
    }

    /// The same policy with the subscription index dropped, so that every subscription check scans its
    /// lists whole: for tests that compare the two.
    #[doc(hidden)]
    pub fn without_subscribe_index(mut self) -> Policy {
        for list in self
            .anonymous
            .iter_mut()
            .chain(self.users.values_mut())
            .chain(self.patterns.iter_mut())
        {
            list.subscribe_index = None;
        }
        self
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
    fn own_list(&self, username: Option<&str>) -> Option<&List> {
        match username {
            None => self.anonymous.as_ref(),
            Some(name) => self.users.get(name),
        }
    }

    /// Decides `access` to `topic` (a concrete topic for read/write, a filter for subscribe/unsubscribe)
    /// for `client`, exactly as Mosquitto (of this policy's [`Semantics`]) with this acl file would, plus
    /// our subscription check.
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
        if let Some(list) = own {
            let mut found = Terminal::default();
            self.arena.matching(list.root, &walk, &mut found);
            if let Some(decision) = verdict(&found, access) {
                return decision;
            }
        }
        let Some(patterns) = &self.patterns else {
            return Decision::deny(Reason::NoRuleMatched);
        };
        if let Some(reason) = dangerous_identity(client) {
            return Decision::deny(reason);
        }
        let mut found = Terminal::default();
        self.arena.matching(patterns.root, &walk, &mut found);
        if let (Some(root), Some(_)) = (patterns.username_root, client.username) {
            self.arena.matching(root, &walk, &mut found);
        }
        verdict(&found, access).unwrap_or(Decision::deny(Reason::NoRuleMatched))
    }

    /// The rules that apply to `client`, own list first, as (id, filter after substitution).
    /// Patterns with `%u` are left out for a client without username, and (2.1) patterns that can match
    /// nothing for this client. Allocates.
    pub(crate) fn applicable_rules(&self, client: ClientRef<'_>) -> (Applicable, Applicable) {
        let own = self
            .own_rules(client.username)
            .iter()
            .map(|&id| (id, self.rule(id).filter.clone()))
            .collect();
        let patterns = self
            .pattern_rules()
            .iter()
            .filter(|&&id| !(self.rule(id).uses_username() && client.username.is_none()))
            .filter_map(|&id| {
                let mut filter = String::new();
                self.substitute_into(&mut filter, &self.rule(id).filter, client)
                    .then_some((id, filter))
            })
            .collect();
        (own, patterns)
    }

    fn own_rules(&self, username: Option<&str>) -> &[RuleId] {
        self.own_list(username).map_or(&[], |list| &list.rules)
    }

    fn pattern_rules(&self) -> &[RuleId] {
        self.patterns.as_ref().map_or(&[], |list| &list.rules)
    }

    /// Our addition to Mosquitto: refuse a subscription when no topic it matches could ever be read.
    /// Sound, not complete: every filter that could deliver something is granted.
    ///
    /// Not on the per-message path, but a client may send many filters: long lists are narrowed by
    /// their rules' first levels (`SubscribeIndex`), and patterns are substituted into one reused buffer,
    /// skipping those whose plain first level already rules them out.
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
        let covers = |f: &str| topic::filter_covers(f, filter);
        let may_read = |f: &str| topic::filters_intersect(f, filter);
        let is_deny = |p: Permission| p.is_deny();
        let reads = |p: Permission| p.grants(Access::Read);
        let own = self.own_list(client.username);
        let in_own =
            |looking: Looking, kind: &dyn Fn(Permission) -> bool, test: &dyn Fn(&str) -> bool| {
                own.and_then(|list| {
                    list.subscribe_candidates(filter, looking).find(|&id| {
                        let rule = self.rule(id);
                        kind(rule.permission) && test(&rule.filter)
                    })
                })
            };
        if let Some(deny) = in_own(Looking::ForCover, &is_deny, &covers) {
            return Decision::deny(Reason::SubscriptionDeniedBy(deny));
        }
        if let Some(rule) = in_own(Looking::ForIntersection, &reads, &may_read) {
            return Decision::allow(Reason::SubscriptionMayDeliver(rule));
        }
        let Some(patterns) = &self.patterns else {
            return Decision::deny(Reason::SubscriptionNeverDelivers);
        };
        if dangerous_identity(client).is_some() {
            return Decision::deny(Reason::SubscriptionNeverDelivers);
        }
        let mut buffer = String::new();
        let mut in_patterns =
            |looking: Looking, kind: &dyn Fn(Permission) -> bool, test: &dyn Fn(&str) -> bool| {
                for id in patterns.subscribe_candidates(filter, looking) {
                    let rule = self.rule(id);
                    if !kind(rule.permission)
                        || (rule.uses_username() && client.username.is_none())
                        || first_levels_disjoint(&rule.filter, filter)
                    {
                        continue;
                    }
                    if self.substitute_into(&mut buffer, &rule.filter, client) && test(&buffer) {
                        return Some(id);
                    }
                }
                None
            };
        if let Some(deny) = in_patterns(Looking::ForCover, &is_deny, &covers) {
            return Decision::deny(Reason::SubscriptionDeniedBy(deny));
        }
        match in_patterns(Looking::ForIntersection, &reads, &may_read) {
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
    if topic.as_bytes().first() != Some(&b'$') {
        return None;
    }
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

/// `true` when a pattern's first level and a filter's first level are both plain text and differ: then
/// no topic matches both, whatever `%u`/`%c` become further on in the pattern.
fn first_levels_disjoint(pattern: &str, filter: &str) -> bool {
    fn first(s: &str) -> &str {
        s.split('/').next().unwrap_or("")
    }
    let (p, f) = (first(pattern), first(filter));
    let plain = |l: &str| l != "+" && l != "#";
    plain(p) && plain(f) && !p.contains('%') && p != f
}

/// CVE-2017-7650: with patterns present, a username or client id containing `+` or `#` is denied.
pub(super) fn dangerous_identity(client: ClientRef<'_>) -> Option<Reason> {
    let dangerous = topic::has_wildcard;
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
