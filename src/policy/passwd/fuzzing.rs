//! Hooks for the fuzz targets (`fuzz/`), compiled only with `--cfg fuzzing` (as `cargo fuzz` builds):
//! one hash field decoded and checked on its own, with its cost known first, so that a target can keep
//! to cheap entries instead of spending seconds on a `$7$` entry with a billion iterations.

use super::hash::StoredHash;

/// Decodes a trimmed hash field as a login would: its cost (see [`work`]) or why it is unusable.
pub fn decode(field: &[u8]) -> Result<u64, String> {
    StoredHash::parse(field)
        .map(|h| h.work())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the hash field, if it decodes and costs at most `max_work` (SHA-512
/// compressions for `$6$`/`$7$` iterations, KiB-passes for argon2id).
pub fn verify(field: &[u8], password: &[u8], max_work: u64) -> Option<bool> {
    let hash = StoredHash::parse(field).ok()?;
    (hash.work() <= max_work).then(|| hash.verify(password))
}

/// The cost of verifying against `field` (`None` when it does not decode).
pub fn work(field: &[u8]) -> Option<u64> {
    decode(field).ok()
}
