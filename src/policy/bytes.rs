//! Word-at-a-time byte searches for the per-message path.
//!
//! An ACL check scans the topic for wildcards and `/`, and the identity for `+`/`#`. Topics are short, so
//! a searcher's setup costs more than the scan; a byte loop costs a compare and a branch per byte. These
//! read eight bytes at a time and find the matching bytes with exact bit arithmetic (no false positives,
//! so the first hit is always the right one).

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `x` that is zero, and no other bit.
#[inline]
fn zero_bytes(x: u64) -> u64 {
    // Adding 0x7f to the low seven bits sets the high bit unless they were all clear; or-ing `x` in
    // catches a set high bit. No carry crosses a byte, so every byte is judged on its own.
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The high bit of each byte of `word` equal to `byte`.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ (ONES * u64::from(byte)))
}

/// The eight bytes at `at`, little-endian (the first byte is the lowest).
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The index of the first `byte` in `bytes` at or after `from`.
#[inline]
pub fn find_from(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    let len = bytes.len();
    let mut at = from;
    while at + 8 <= len {
        let hits = bytes_equal(word_at(bytes, at), byte);
        if hits != 0 {
            return Some(at + first_byte(hits));
        }
        at += 8;
    }
    if at >= len {
        return None;
    }
    if len < 8 {
        return bytes[at..].iter().position(|&b| b == byte).map(|i| at + i);
    }
    // The last eight bytes, ignoring those before `at` (already looked at).
    let last = len - 8;
    let skip = (at - last) * 8;
    let hits = bytes_equal(word_at(bytes, last), byte) & (u64::MAX << skip);
    (hits != 0).then(|| last + first_byte(hits))
}

/// Does `bytes` contain `a` or `b`?
#[inline]
pub fn contains_either(bytes: &[u8], a: u8, b: u8) -> bool {
    let len = bytes.len();
    if len < 8 {
        return bytes.iter().any(|&x| x == a || x == b);
    }
    let mut at = 0;
    loop {
        // The last step re-reads some bytes rather than looking at fewer than eight.
        let start = at.min(len - 8);
        let w = word_at(bytes, start);
        if bytes_equal(w, a) | bytes_equal(w, b) != 0 {
            return true;
        }
        if start == len - 8 {
            return false;
        }
        at += 8;
    }
}

/// The index, within its word, of the first byte whose high bit is set in `hits`.
#[inline]
fn first_byte(hits: u64) -> usize {
    (hits.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_on_every_byte_value_next_to_a_hit() {
        // The classic "has zero byte" trick reports false hits above a real one; this one must not.
        for other in 0..=255u8 {
            let mut bytes = [b'x'; 16];
            bytes[3] = b'/';
            bytes[4] = other;
            let want = (0..16).filter(|&i| bytes[i] == b'/').collect::<Vec<_>>();
            let mut got = Vec::new();
            let mut from = 0;
            while let Some(i) = find_from(&bytes, from, b'/') {
                got.push(i);
                from = i + 1;
            }
            assert_eq!(got, want, "byte {other:#x}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn find_from_agrees_with_a_byte_loop(
            bytes in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'+'), any::<u8>()], 0..40),
            from in 0usize..45,
        ) {
            let want = bytes.iter().enumerate().skip(from).find(|(_, &b)| b == b'/').map(|(i, _)| i);
            prop_assert_eq!(find_from(&bytes, from, b'/'), want);
        }

        #[test]
        fn contains_either_agrees_with_a_byte_loop(
            bytes in proptest::collection::vec(prop_oneof![Just(b'#'), Just(b'+'), any::<u8>()], 0..40),
        ) {
            let want = bytes.iter().any(|&b| b == b'+' || b == b'#');
            prop_assert_eq!(contains_either(&bytes, b'+', b'#'), want);
        }
    }
}
