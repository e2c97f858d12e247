//! The compiled form of the rule lists: topic tries whose `%u`/`%c` levels are bound at check time.
//!
//! Every list (the anonymous list, each user's list, the pattern list) is a trie in one shared arena.
//! A decision walks the topic once through the one or two tries that apply to the client; its cost
//! depends on the topic's length and on how many filters match it, not on how many rules or users exist.
//! Walking allocates nothing: levels are slices of the topic and `%u`/`%c` are compared in place.

// A fast, unkeyed hash is safe here: every key comes from the acl file, so a client can only look
// keys up, never add colliding ones.
use rustc_hash::FxHashMap as HashMap;

use crate::policy::decision::{Access, RuleId};
use crate::policy::semantics::{identity_fits_level, Semantics};

use super::rule::Permission;

/// Index of a node in the arena.
pub(crate) type NodeId = u32;

/// How many literal children a node keeps in a plain vector before switching to a hash map.
const FEW: usize = 8;

/// One piece of a pattern level that contains `%u` or `%c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text.
    Text(Box<str>),
    /// `%u`: the username.
    Username,
    /// `%c`: the client id.
    ClientId,
}

/// The children of a node keyed by a literal level.
#[derive(Debug, Default)]
enum Literals {
    #[default]
    None,
    Few(Vec<(Box<str>, NodeId)>),
    Many(HashMap<Box<str>, NodeId>),
}

impl Literals {
    fn get(&self, level: &str) -> Option<NodeId> {
        match self {
            Literals::None => None,
            Literals::Few(v) => v.iter().find(|(k, _)| &**k == level).map(|(_, n)| *n),
            Literals::Many(m) => m.get(level).copied(),
        }
    }

    fn insert(&mut self, level: &str, node: NodeId) {
        match self {
            Literals::None => *self = Literals::Few(vec![(level.into(), node)]),
            Literals::Few(v) if v.len() < FEW => v.push((level.into(), node)),
            Literals::Few(v) => {
                let mut m: HashMap<Box<str>, NodeId> = v.drain(..).collect();
                m.insert(level.into(), node);
                *self = Literals::Many(m);
            }
            Literals::Many(m) => {
                m.insert(level.into(), node);
            }
        }
    }
}

/// The rules whose filter ends at a node, reduced to what a decision needs: the first (lowest) rule of
/// each kind. Order inside a list never changes the verdict (deny entries are checked first), only which
/// rule is named as the reason, and we name the earliest in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Terminal {
    pub deny: Option<RuleId>,
    pub read: Option<RuleId>,
    pub write: Option<RuleId>,
}

fn min_rule(a: Option<RuleId>, b: Option<RuleId>) -> Option<RuleId> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Terminal {
    fn add(&mut self, rule: RuleId, permission: Permission) {
        let slot = |s: &mut Option<RuleId>| *s = min_rule(*s, Some(rule));
        match permission {
            Permission::Deny => slot(&mut self.deny),
            Permission::Read => slot(&mut self.read),
            Permission::Write => slot(&mut self.write),
            Permission::ReadWrite => {
                slot(&mut self.read);
                slot(&mut self.write);
            }
        }
    }

    fn merge(&mut self, other: &Terminal) {
        self.deny = min_rule(self.deny, other.deny);
        self.read = min_rule(self.read, other.read);
        self.write = min_rule(self.write, other.write);
    }

    /// The earliest rule granting `access`, if any.
    pub fn granting(&self, access: Access) -> Option<RuleId> {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Subscribe | Access::Unsubscribe => None,
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    literals: Literals,
    plus: Option<NodeId>,
    hash: Option<NodeId>,
    /// The `%u`/`%c` children, on the few nodes that have any (pattern lists): kept aside so that the
    /// many nodes of large user lists stay small.
    identity: Option<Box<Identity>>,
    terminal: Terminal,
    /// Whether the node has literal or `+` children (the walk then needs the level's end).
    has_level_children: bool,
    /// Whether the node is only a step to its `+` child: no other child, no rule ends here. A walk
    /// passes through a run of these (`+/+/+/%u`) without a visit each.
    only_plus: bool,
}

/// A node's children keyed by `%u`/`%c`.
#[derive(Debug, Default)]
struct Identity {
    /// A pattern level that is exactly `%u`.
    username: Option<NodeId>,
    /// A pattern level that is exactly `%c`.
    client_id: Option<NodeId>,
    /// Other pattern levels containing `%u`/`%c`.
    templates: Vec<(Box<[Piece]>, NodeId)>,
    /// Mosquitto 2.1: a pattern level that is exactly `%u` (the value must fit a level whole).
    username_level: Option<NodeId>,
    /// Mosquitto 2.1: a pattern level that is exactly `%c`.
    client_id_level: Option<NodeId>,
}

impl Node {
    /// The node's `%u`/`%c` children, made empty on first use.
    fn identity(&mut self) -> &mut Identity {
        self.identity.get_or_insert_with(Default::default)
    }
}

/// What a level of a rule's filter is, once parsed.
enum LevelKind<'a> {
    Literal(&'a str),
    Plus,
    Hash,
    Username,
    ClientId,
    Template(Vec<Piece>),
    UsernameLevel,
    ClientIdLevel,
}

/// Splits a pattern level into pieces exactly as Mosquitto's substitution loop reads it.
fn pattern_pieces(level: &str) -> Vec<Piece> {
    let bytes = level.as_bytes();
    let mut pieces = Vec::new();
    let mut text_from = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'%' && (bytes[i + 1] == b'u' || bytes[i + 1] == b'c') {
            if text_from < i {
                pieces.push(Piece::Text(level[text_from..i].into()));
            }
            pieces.push(if bytes[i + 1] == b'u' {
                Piece::Username
            } else {
                Piece::ClientId
            });
            i += 2;
            text_from = i;
        } else {
            i += 1;
        }
    }
    if text_from < bytes.len() {
        pieces.push(Piece::Text(level[text_from..].into()));
    }
    pieces
}

fn classify(level: &str, substitute: bool, semantics: Semantics) -> LevelKind<'_> {
    match level {
        "+" => LevelKind::Plus,
        "#" => LevelKind::Hash,
        "%u" if substitute && semantics.whole_level_substitution() => LevelKind::UsernameLevel,
        "%c" if substitute && semantics.whole_level_substitution() => LevelKind::ClientIdLevel,
        _ if substitute && semantics.whole_level_substitution() => LevelKind::Literal(level),
        _ if !substitute || !(level.contains("%u") || level.contains("%c")) => {
            LevelKind::Literal(level)
        }
        _ => {
            let pieces = pattern_pieces(level);
            match pieces.as_slice() {
                [Piece::Username] => LevelKind::Username,
                [Piece::ClientId] => LevelKind::ClientId,
                _ => LevelKind::Template(pieces),
            }
        }
    }
}

/// Who a walk is for: the values `%u`/`%c` take, and the topic.
#[derive(Clone, Copy)]
pub(crate) struct Walk<'a> {
    pub topic: &'a str,
    pub username: Option<&'a str>,
    pub client_id: &'a str,
}

/// A position in the topic: where the next level starts, or [`END`] once every level is consumed.
type Cursor = usize;

/// The cursor after the last level.
const END: Cursor = usize::MAX;

/// Where the level starting at `pos` ends, and the cursor after it.
#[inline]
fn level_at(topic: &[u8], pos: usize) -> (usize, Cursor) {
    match crate::policy::bytes::find_from(topic, pos, b'/') {
        Some(end) => (end, end + 1),
        None => (topic.len(), END),
    }
}

/// The cursor after `end` if a level boundary is there (the end of the topic or a `/`).
#[inline]
fn boundary(topic: &[u8], end: usize) -> Option<Cursor> {
    match topic.get(end) {
        None => Some(END),
        Some(b'/') => Some(end + 1),
        Some(_) => None,
    }
}

/// If `value` sits at `pos` in `topic` and ends on a level boundary, the cursor after it.
#[inline]
fn after_value(topic: &[u8], pos: usize, value: &str) -> Option<Cursor> {
    let end = pos + value.len();
    if topic.get(pos..end)? != value.as_bytes() {
        return None;
    }
    boundary(topic, end)
}

fn after_template(w: &Walk<'_>, pos: usize, pieces: &[Piece]) -> Option<Cursor> {
    let bytes = w.topic.as_bytes();
    let mut at = pos;
    for piece in pieces {
        let value: &str = match piece {
            Piece::Text(t) => t,
            Piece::Username => w.username?,
            Piece::ClientId => w.client_id,
        };
        if !bytes[at..].starts_with(value.as_bytes()) {
            return None;
        }
        at += value.len();
    }
    boundary(bytes, at)
}

/// The arena of all tries of a policy.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
    /// How pattern levels are read (fixed when the policy is compiled).
    semantics: Semantics,
}

impl Arena {
    /// An empty arena whose pattern levels are read as Mosquitto `semantics` reads them.
    pub fn new(semantics: Semantics) -> Arena {
        Arena {
            nodes: Vec::new(),
            semantics,
        }
    }

    /// A new, empty trie; returns its root.
    pub fn new_root(&mut self) -> NodeId {
        self.push()
    }

    fn push(&mut self) -> NodeId {
        let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 trie nodes");
        self.nodes.push(Node::default());
        id
    }

    /// Adds a rule's filter under `root`. With `substitute`, levels containing `%u`/`%c` are pattern
    /// levels; otherwise they are literal text (as in `topic` lines).
    pub fn insert(
        &mut self,
        root: NodeId,
        filter: &str,
        substitute: bool,
        rule: RuleId,
        permission: Permission,
    ) {
        let mut node = root;
        for level in filter.split('/') {
            let parent = node;
            node = match classify(level, substitute, self.semantics) {
                LevelKind::Literal(text) => match self.nodes[node as usize].literals.get(text) {
                    Some(child) => child,
                    None => {
                        let child = self.push();
                        self.nodes[node as usize].literals.insert(text, child);
                        child
                    }
                },
                LevelKind::Plus => self.child(node, |n| &mut n.plus),
                LevelKind::Hash => self.child(node, |n| &mut n.hash),
                LevelKind::Username => self.child(node, |n| &mut n.identity().username),
                LevelKind::ClientId => self.child(node, |n| &mut n.identity().client_id),
                LevelKind::UsernameLevel => self.child(node, |n| &mut n.identity().username_level),
                LevelKind::ClientIdLevel => self.child(node, |n| &mut n.identity().client_id_level),
                LevelKind::Template(pieces) => {
                    let existing = self.nodes[node as usize]
                        .identity()
                        .templates
                        .iter()
                        .find(|(p, _)| **p == *pieces)
                        .map(|(_, c)| *c);
                    match existing {
                        Some(child) => child,
                        None => {
                            let child = self.push();
                            self.nodes[node as usize]
                                .identity()
                                .templates
                                .push((pieces.into(), child));
                            child
                        }
                    }
                }
            };
            self.note_children(parent);
        }
        self.nodes[node as usize].terminal.add(rule, permission);
        self.note_children(node);
    }

    /// Records on `node` which kinds of children it has, after one was added.
    fn note_children(&mut self, node: NodeId) {
        let n = &mut self.nodes[node as usize];
        n.has_level_children = !matches!(n.literals, Literals::None) || n.plus.is_some();
        n.only_plus = n.plus.is_some()
            && matches!(n.literals, Literals::None)
            && n.hash.is_none()
            && n.identity.is_none()
            && n.terminal == Terminal::default();
    }

    fn child(&mut self, node: NodeId, slot: impl Fn(&mut Node) -> &mut Option<NodeId>) -> NodeId {
        if let Some(child) = *slot(&mut self.nodes[node as usize]) {
            return child;
        }
        let child = self.push();
        *slot(&mut self.nodes[node as usize]) = Some(child);
        child
    }

    /// Collects, into `acc`, the terminals of every filter under `root` that matches the walk's topic.
    /// The topic must be valid (non-empty, no wildcards).
    pub fn matching(&self, root: NodeId, w: &Walk<'_>, acc: &mut Terminal) {
        // The `$` rule: wildcards in the first level never match a topic starting with `$`.
        let wildcards = w.topic.as_bytes().first() != Some(&b'$');
        self.visit_level(&self.nodes[root as usize], 0, wildcards, w, acc);
    }

    /// Visits node `id` with the topic consumed up to `cursor`.
    fn visit(&self, id: NodeId, mut cursor: Cursor, w: &Walk<'_>, acc: &mut Terminal) {
        let mut node = &self.nodes[id as usize];
        // Pass through nodes that only lead to `+`: each takes one level, whatever it is.
        while node.only_plus && cursor != END {
            let (_, next) = level_at(w.topic.as_bytes(), cursor);
            cursor = next;
            node = &self.nodes[node.plus.expect("only_plus has a `+` child") as usize];
        }
        if cursor == END {
            // The topic is used up: filters ending here match, and so does a trailing `#` (`a/#`
            // matches `a`).
            acc.merge(&node.terminal);
            if let Some(hash) = node.hash {
                acc.merge(&self.nodes[hash as usize].terminal);
            }
            return;
        }
        self.visit_level(node, cursor, true, w, acc);
    }

    /// Matches the level starting at `pos` against `node`'s children (`wildcards`: whether `+` and `#`
    /// may match it).
    fn visit_level(
        &self,
        node: &Node,
        pos: usize,
        wildcards: bool,
        w: &Walk<'_>,
        acc: &mut Terminal,
    ) {
        let topic = w.topic.as_bytes();
        if wildcards {
            if let Some(hash) = node.hash {
                acc.merge(&self.nodes[hash as usize].terminal);
            }
        }
        if node.has_level_children {
            let (end, next) = level_at(topic, pos);
            if let Some(child) = node.literals.get(&w.topic[pos..end]) {
                self.visit(child, next, w, acc);
            }
            if wildcards {
                if let Some(child) = node.plus {
                    self.visit(child, next, w, acc);
                }
            }
        }
        let Some(identity) = node.identity.as_deref() else {
            return;
        };
        if let (Some(child), Some(username)) = (identity.username, w.username) {
            if let Some(after) = after_value(topic, pos, username) {
                self.visit(child, after, w, acc);
            }
        }
        if let Some(child) = identity.client_id {
            if let Some(after) = after_value(topic, pos, w.client_id) {
                self.visit(child, after, w, acc);
            }
        }
        for (pieces, child) in &identity.templates {
            if let Some(after) = after_template(w, pos, pieces) {
                self.visit(*child, after, w, acc);
            }
        }
        // Mosquitto 2.1: a whole level, and only a value that fits one (`pos == 0`: the first level).
        if let (Some(child), Some(username)) = (identity.username_level, w.username) {
            if identity_fits_level(username, pos == 0) {
                if let Some(after) = after_value(topic, pos, username) {
                    self.visit(child, after, w, acc);
                }
            }
        }
        if let Some(child) = identity.client_id_level {
            if identity_fits_level(w.client_id, pos == 0) {
                if let Some(after) = after_value(topic, pos, w.client_id) {
                    self.visit(child, after, w, acc);
                }
            }
        }
    }

    /// Number of nodes (for tests and statistics).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}
