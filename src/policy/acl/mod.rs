//! Mosquitto's `acl_file`: grammar, rules with their source lines, the compiled [`Policy`], and
//! explanations of its decisions.

mod explain;
mod parse;
mod policy;
pub mod reference;
mod rule;
mod strict;
mod subscribe_index;
mod trie;

pub use explain::{
    why_no_match, Explanation, Miss, NearMiss, ReasonDetail, RuleRef, MAX_NEAR_MISSES,
};
pub use parse::{parse_acl, parse_acl_as, AclError, AclErrorKind, AclFile, AclWarning};
pub use policy::{broker_rules, Policy};
pub use rule::{substitute, substitute_into, Permission, Rule, RuleList};
pub use strict::{EffectiveRule, EffectiveRules};
