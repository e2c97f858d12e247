//! Generated differential scenarios: an acl file, the identities that connect, and the topics they
//! write and read. Vocabularies are small so that rules, identities and topics collide often, and they
//! include the odd corners of Mosquitto's semantics: `%u`/`%c` inside a level, `+`/`#`, empty levels,
//! `$` topics, identities with `/`, `+`, `#`, `$`, `%`, spaces and case differences, anonymous clients,
//! merged `user` blocks, deny rules, the one-word `topic FILTER` form, and loose spacing and line endings.

use crate::support::rng::Rng;

/// The username of the client that publishes the messages read cases wait for. Unique: no generated
/// identity or `user` block uses it, so its block changes no decision under test.
pub const WRITER_USERNAME: &str = "zz differential writer";

/// The writer's client id (unique for the same reason).
pub const WRITER_CLIENT_ID: &str = "zz-differential-writer";

/// A retained message Mosquitto publishes itself; the only `$SYS` topic read cases use.
pub const SYS_VERSION: &str = "$SYS/broker/version";

/// Who connects, as sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The CONNECT username (`None`: no username flag; `Some("")`: the flag with a zero-length name).
    pub username: Option<String>,
    /// The CONNECT client id; empty asks the broker to assign one.
    pub client_id: String,
}

/// One acl file and the cases run against it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Where it came from, e.g. `seed 0x2a, scenario 3`.
    pub label: String,
    /// The generated lines of the acl file (without line endings).
    pub lines: Vec<String>,
    /// `true` to end lines with CRLF.
    pub crlf: bool,
    /// `false` to leave the last generated line without a line ending (then reads are not observed).
    pub final_newline: bool,
    /// The identities whose access is checked.
    pub identities: Vec<Identity>,
    /// The topics each identity writes and reads.
    pub topics: Vec<String>,
}

impl Scenario {
    /// The acl file: the generated lines, then, when reads are observed, the writer's `user` block
    /// with a write rule for every topic it publishes.
    pub fn acl(&self) -> String {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let mut text = self.lines.join(end);
        if self.final_newline && !self.lines.is_empty() {
            text.push_str(end);
        }
        if self.observes_reads() {
            text.push_str(&format!("user {WRITER_USERNAME}\n"));
            for topic in self.topics.iter().filter(|t| writer_can_publish(t)) {
                text.push_str(&format!("topic write {topic}\n"));
            }
        }
        text
    }

    /// Whether read access is observed, which needs the writer's block at the end of the file: not
    /// when the generated lines must stay last (no final newline), nor when a line has a NUL byte
    /// (Mosquitto ignores such a line and every line after it: its line reader keeps extending a line
    /// whose C string does not end in a newline).
    pub fn observes_reads(&self) -> bool {
        self.final_newline && !self.lines.iter().any(|l| l.contains('\0'))
    }
}

/// `true` for topics the writer can publish: Mosquitto denies every `$SYS` write (except bridge
/// state topics) and every `$share` read or write before any acl rule.
pub fn writer_can_publish(topic: &str) -> bool {
    if topic.starts_with("$share") {
        return false;
    }
    !topic.starts_with("$SYS") || is_bridge_state(topic)
}

/// `true` for `$SYS/broker/connection/+/state`, the one `$SYS` pattern clients may write.
fn is_bridge_state(topic: &str) -> bool {
    let levels: Vec<&str> = topic.split('/').collect();
    levels.len() == 5 && levels[..3] == ["$SYS", "broker", "connection"] && levels[4] == "state"
}

/// `true` for topics whose read access can be observed: those the writer publishes, and
/// [`SYS_VERSION`], which the broker retains.
pub fn readable(topic: &str) -> bool {
    writer_can_publish(topic) || topic == SYS_VERSION
}

/// `count` scenarios from `seed`, the same ones for the same seed.
pub fn scenarios(seed: u64, count: usize) -> Vec<Scenario> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|n| generate(&mut rng, format!("seed {seed:#x}, scenario {n}")))
        .collect()
}

/// Usernames; `a\u{a0}` ends in a no-break space, which C's `isspace` does not trim.
const USERNAMES: &[&str] = &[
    "alice", "Alice", "bob", "a/b", "a", "%c", "x y", "$u", "read", "José", "a\u{a0}", "u/",
];
const CLIENT_IDS: &[&str] = &[
    "c1", "C1", "a", "a/b", "%u", "$c", "bob", "x y", "alice", "ü", "/c",
];
/// Names with `+`/`#`, which Mosquitto denies whenever patterns are consulted (CVE-2017-7650). Drawn
/// less often than the others, because they deny almost everything.
const DANGEROUS_USERNAMES: &[&str] = &["ev+l", "h#sh"];
const DANGEROUS_CLIENT_IDS: &[&str] = &["k+1", "k#"];
/// Levels of rule filters (besides `#`, which only ends a filter, and identity names).
/// `a\u{a0}` ends in a no-break space, which C's `isspace` does not trim.
const FILTER_LEVELS: &[&str] = &[
    "a", "b", "A", "read", "deny", "x y", "", "+", "+", "%u", "%c", "d-%u", "%c-x", "%%u", "é",
    "a\u{a0}", "%",
];
/// Whole filters the level-by-level generation rarely makes.
const WHOLE_FILTERS: &[&str] = &["#", "+", "+/#", "$SYS/#", "$x/+", "%u", "%c", "/%u", "%u/#"];
/// Levels of concrete topics (besides identity names).
const TOPIC_LEVELS: &[&str] = &["a", "b", "A", "read", "x y", "", "%u", "c1", "é", "a\u{a0}"];
/// First levels that make `$` topics and filters.
const DOLLAR_LEVELS: &[&str] = &["$x", "$SYS", "$share", "$SYSx", "$"];
/// Topics that check the broker's fixed rules for `$SYS` and `$share`.
const FIXED_TOPICS: &[&str] = &[
    "$SYS/broker/connection/b1/state",
    "$SYS/x",
    "$share/g/a",
    "$SYSx/a",
    SYS_VERSION,
];
const ACCESS: &[&str] = &["deny", "read", "write", "readwrite", "readwrite"];

fn generate(rng: &mut Rng, label: String) -> Scenario {
    let identities = identities(rng);
    let lines = rules(rng, &identities);
    let topics = topics(rng, &lines, &identities);
    Scenario {
        label,
        lines,
        crlf: rng.percent(15),
        final_newline: !rng.percent(8),
        identities,
        topics,
    }
}

fn identities(rng: &mut Rng) -> Vec<Identity> {
    let mut out: Vec<Identity> = Vec::new();
    while out.len() < 6 {
        let username = match rng.below(100) {
            0..=19 => None,
            20..=22 => Some(String::new()),
            23..=29 => Some(rng.pick(DANGEROUS_USERNAMES).to_string()),
            _ => Some(rng.pick(USERNAMES).to_string()),
        };
        let client_id = match rng.below(100) {
            0..=2 => String::new(),
            3..=9 => rng.pick(DANGEROUS_CLIENT_IDS).to_string(),
            _ => rng.pick(CLIENT_IDS).to_string(),
        };
        let identity = Identity {
            username,
            client_id,
        };
        if !out.contains(&identity) {
            out.push(identity);
        }
    }
    out
}

/// The generated acl lines: an anonymous section, then `user` blocks (names may repeat: blocks
/// merge), with `pattern` lines anywhere, comments and blank lines, and loose spacing.
fn rules(rng: &mut Rng, identities: &[Identity]) -> Vec<String> {
    let mut lines = Vec::new();
    if rng.percent(5) {
        // Only comments and blank lines: denies everything (CVE-2018-12550).
        lines.push("# nothing but comments".to_owned());
        lines.push(String::new());
        return lines;
    }
    let count = 5 + rng.below(10);
    for _ in 0..count {
        match rng.below(100) {
            0..=4 => lines.push(format!("# comment {}", rng.below(100))),
            5..=7 => lines.push(String::new()),
            8..=25 => {
                let name = user_block_name(rng, identities);
                lines.push(format!(
                    "{}user{}{name}{}",
                    indent(rng),
                    gap(rng),
                    tail(rng)
                ));
            }
            26..=55 => lines.push(rule_line(rng, "pattern", identities)),
            // A `topic` line: before the first `user` line it goes to the anonymous list.
            _ => lines.push(rule_line(rng, "topic", identities)),
        }
    }
    lines
}

/// A `user` block name: usually one of the identities' usernames (so the block applies), sometimes
/// another name from the vocabulary.
fn user_block_name(rng: &mut Rng, identities: &[Identity]) -> String {
    let named: Vec<&str> = identities
        .iter()
        .filter_map(|i| i.username.as_deref())
        .filter(|u| !u.is_empty())
        .collect();
    if !named.is_empty() && rng.percent(70) {
        rng.pick(&named).to_string()
    } else {
        rng.pick(USERNAMES).to_string()
    }
}

fn rule_line(rng: &mut Rng, keyword: &str, identities: &[Identity]) -> String {
    let filter = filter(rng, keyword == "pattern", identities);
    let access = *rng.pick(ACCESS);
    let (indent, gap1, gap2, tail) = (indent(rng), gap(rng), gap(rng), tail(rng));
    if access == "readwrite" && !filter.contains(' ') && rng.percent(50) {
        // The one-word form: the filter alone means readwrite (`topic read` is the topic "read").
        format!("{indent}{keyword}{gap1}{filter}{tail}")
    } else {
        format!("{indent}{keyword}{gap1}{access}{gap2}{filter}{tail}")
    }
}

/// A valid filter: 1–4 levels, `+` whole levels, `#` only last, sometimes a `$` first level.
/// `topic` lines may name identities literally; `pattern` lines lean on `%u`/`%c`.
fn filter(rng: &mut Rng, pattern: bool, identities: &[Identity]) -> String {
    if rng.percent(8) {
        return rng.pick(WHOLE_FILTERS).to_string();
    }
    let mut levels: Vec<String> = Vec::new();
    if rng.percent(10) {
        levels.push(rng.pick(DOLLAR_LEVELS).to_string());
    }
    let n = 1 + rng.below(4);
    while levels.len() < n {
        let level = if !pattern && rng.percent(20) {
            identity_word(rng, identities)
        } else {
            rng.pick(FILTER_LEVELS).to_string()
        };
        levels.push(level);
    }
    if rng.percent(25) {
        levels.push("#".to_owned());
    }
    let filter = levels.join("/");
    if filter.is_empty() {
        // A single empty level is not a valid filter.
        return "a/#".to_owned();
    }
    filter
}

/// A username or client id of one of the identities, or a word made from one (`d-<name>`), for
/// literal topic levels. Names with `+`/`#` are left out (they are not valid in filters or topics).
fn identity_word(rng: &mut Rng, identities: &[Identity]) -> String {
    let identity = rng.pick(identities);
    let word = match (&identity.username, rng.percent(50)) {
        (Some(u), true) if !u.is_empty() => u.clone(),
        _ => identity.client_id.clone(),
    };
    if word.is_empty() || word.contains(['+', '#']) {
        return "a".to_owned();
    }
    if rng.percent(30) {
        format!("d-{word}")
    } else {
        word
    }
}

/// Topics: instances of the rules' filters, mostly of rules that apply to the identity they are made
/// for (so that rules match), mutations of them (so that rules almost match), random topics, and a
/// few fixed `$SYS`/`$share` ones.
fn topics(rng: &mut Rng, lines: &[String], identities: &[Identity]) -> Vec<String> {
    let rules = generated_rules(lines);
    let mut topics: Vec<String> = Vec::new();
    let mut attempts = 0;
    while topics.len() < 14 && attempts < 200 {
        attempts += 1;
        let topic = match rng.below(100) {
            0..=64 if !rules.is_empty() => {
                let identity = rng.pick(identities).clone();
                let own: Vec<&GeneratedRule> =
                    rules.iter().filter(|r| r.applies_to(&identity)).collect();
                let rule = if !own.is_empty() && rng.percent(80) {
                    *rng.pick(&own)
                } else {
                    rng.pick(&rules)
                };
                let mut topic = instantiate(rng, rule, &identity);
                if rng.percent(30) {
                    topic = mutate(rng, &topic);
                }
                topic
            }
            65..=71 => rng.pick(FIXED_TOPICS).to_string(),
            _ => random_topic(rng, identities),
        };
        if valid_topic(&topic) && !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    topics
}

/// A `topic` or `pattern` line of a generated file, as far as topic generation needs it.
struct GeneratedRule {
    /// `None` for the anonymous list, `Some(user)` for a user block; ignored for patterns.
    owner: Option<String>,
    pattern: bool,
    filter: String,
}

impl GeneratedRule {
    /// Whether Mosquitto would consult this rule for `identity` (a zero-length username is anonymous).
    fn applies_to(&self, identity: &Identity) -> bool {
        self.pattern
            || self.owner.as_deref() == identity.username.as_deref().filter(|u| !u.is_empty())
    }
}

/// The `topic`/`pattern` lines with the list each belongs to.
fn generated_rules(lines: &[String]) -> Vec<GeneratedRule> {
    let mut owner = None;
    let mut rules = Vec::new();
    for line in lines {
        // As Mosquitto reads it: a C string (up to a NUL), trimmed with C `isspace`.
        let line = c_trim(line.split('\0').next().unwrap_or_default());
        let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = c_trim(rest);
        let pattern = match keyword {
            "user" => {
                owner = Some(rest.to_owned());
                continue;
            }
            "topic" => false,
            "pattern" => true,
            _ => continue,
        };
        let filter = match rest.split_once(' ') {
            Some((access, filter)) if ["deny", "read", "write", "readwrite"].contains(&access) => {
                filter
            }
            _ => rest,
        };
        rules.push(GeneratedRule {
            owner: owner.clone(),
            pattern,
            filter: c_trim(filter).to_owned(),
        });
    }
    rules
}

/// Trims what C's `isspace` calls space (not Unicode spaces such as U+00A0).
fn c_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}'])
}

/// A concrete topic the rule's filter matches for `identity`: `%u`/`%c` substituted in one
/// left-to-right pass for patterns, `+` and `#` filled with random levels.
fn instantiate(rng: &mut Rng, rule: &GeneratedRule, identity: &Identity) -> String {
    let filter = if rule.pattern {
        let client_id = if identity.client_id.is_empty() {
            "c1"
        } else {
            &identity.client_id
        };
        let username = identity.username.as_deref().filter(|u| !u.is_empty());
        substitute(&rule.filter, username, client_id)
    } else {
        rule.filter.clone()
    };
    let mut levels: Vec<String> = Vec::new();
    for level in filter.split('/') {
        match level {
            "+" => levels.push(rng.pick(TOPIC_LEVELS).to_string()),
            "#" => {
                for _ in 0..rng.below(3) {
                    levels.push(rng.pick(TOPIC_LEVELS).to_string());
                }
            }
            other => levels.push(other.to_owned()),
        }
    }
    levels.join("/")
}

/// `%c` → client id, `%u` → username (left as is without one), in a single pass.
fn substitute(filter: &str, username: Option<&str>, client_id: &str) -> String {
    let mut out = String::new();
    let mut rest = filter;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let value = match rest[at + 1..].chars().next() {
            Some('c') => Some(client_id),
            Some('u') => username,
            _ => None,
        };
        match value {
            Some(value) => {
                out.push_str(value);
                rest = &rest[at + 2..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A near miss: one more level, one fewer, a case change, or a `$` prefix.
fn mutate(rng: &mut Rng, topic: &str) -> String {
    match rng.below(5) {
        0 => format!("{topic}/{}", rng.pick(TOPIC_LEVELS)),
        1 => topic
            .rsplit_once('/')
            .map(|(head, _)| head.to_owned())
            .unwrap_or_default(),
        2 => topic.to_uppercase(),
        3 => format!("$x/{topic}"),
        _ => format!("{topic}/"),
    }
}

fn random_topic(rng: &mut Rng, identities: &[Identity]) -> String {
    let n = 1 + rng.below(4);
    let mut levels: Vec<String> = Vec::new();
    if rng.percent(10) {
        levels.push(rng.pick(DOLLAR_LEVELS).to_string());
    }
    while levels.len() < n {
        if rng.percent(30) {
            levels.push(identity_word(rng, identities));
        } else {
            levels.push(rng.pick(TOPIC_LEVELS).to_string());
        }
    }
    levels.join("/")
}

/// A topic a client may publish and an acl line can hold: non-empty, no wildcards, no control
/// characters (Mosquitto refuses them in any MQTT string), no leading or trailing space (acl lines
/// are trimmed).
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && !topic.contains(['+', '#'])
        && !topic.contains(char::is_control)
        && c_trim(topic) == topic
}

/// Indentation before a keyword (Mosquitto skips leading spaces).
fn indent(rng: &mut Rng) -> &'static str {
    if rng.percent(10) {
        "  "
    } else {
        ""
    }
}

/// The space between words (Mosquitto splits on runs of spaces).
fn gap(rng: &mut Rng) -> &'static str {
    if rng.percent(10) {
        "  "
    } else {
        " "
    }
}

/// Trailing whitespace, which Mosquitto strips (C `isspace`: also vertical tab and form feed), or a
/// NUL, which ends the line for Mosquitto (it reads lines as C strings).
fn tail(rng: &mut Rng) -> &'static str {
    match rng.below(40) {
        0 | 1 => " ",
        2 | 3 => "\t",
        4 => "\u{b}",
        5 => "\u{c}",
        6 if rng.percent(50) => "\0 ignored",
        _ => "",
    }
}
