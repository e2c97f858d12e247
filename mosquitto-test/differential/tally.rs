//! [`Tally`]: how many cases were allowed and denied, per access, and which engine reasons decided
//! them, to show that a run exercises every outcome.

use mqtt_policy::policy::{Access, Decision, Verdict};

use super::observe::Observed;

/// Allowed and denied cases per access, and how often each kind of engine reason decided.
#[derive(Default)]
pub struct Tally {
    /// `[read allow, read deny, write allow, write deny]`.
    counts: [usize; 4],
    /// Engine reason kind (`Rule`, `NoRuleMatched`, ...) and verdict → count.
    reasons: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    /// Counts observed cases and the engine's decisions for them (same order).
    pub fn add(&mut self, observed: &[Observed], decisions: &[Decision]) {
        for (o, d) in observed.iter().zip(decisions) {
            let access = usize::from(o.access == Access::Write) * 2;
            self.counts[access + usize::from(o.verdict == Verdict::Deny)] += 1;
            let reason = format!("{:?}", d.reason);
            let kind = reason.split('(').next().unwrap_or_default();
            *self
                .reasons
                .entry(format!("{kind} {:?}", d.verdict))
                .or_default() += 1;
        }
    }

    /// The number of cases counted.
    pub fn cases(&self) -> usize {
        self.counts.iter().sum()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [ra, rd, wa, wd] = self.counts;
        write!(
            f,
            "read {ra} allowed / {rd} denied, write {wa} allowed / {wd} denied; engine reasons:"
        )?;
        for (reason, n) in &self.reasons {
            write!(f, " {reason} {n},")?;
        }
        Ok(())
    }
}
