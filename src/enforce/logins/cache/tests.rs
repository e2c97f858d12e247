//! Each statement of the module documentation, checked so that it fails if the statement breaks.

use super::*;
use crate::policy::passwd::{hash_password, HashKind};

/// A password file with `(user, password)` entries hashed with `$6$` (fast).
fn file(entries: &[(&str, &str)]) -> PasswordFile {
    let mut text = String::new();
    for (user, password) in entries {
        let hash = hash_password(password.as_bytes(), HashKind::Sha512, None);
        text.push_str(&format!("{user}:{hash}\n"));
    }
    PasswordFile::parse("pw", text.as_bytes())
}

#[test]
fn a_repeated_good_login_is_answered_from_the_cache() {
    let pw = file(&[("alice", "secret")]);
    let mut cache = LoginCache::new();
    assert!(cache.is_enabled());
    assert_eq!(
        cache.verify(&pw, "alice", Some(b"secret")),
        AuthResult::Accepted
    );
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 1, 1));
    assert_eq!(
        cache.verify(&pw, "alice", Some(b"secret")),
        AuthResult::Accepted
    );
    assert_eq!((cache.hits(), cache.misses()), (1, 1));
}

#[test]
fn a_wrong_password_is_never_remembered_as_good() {
    let pw = file(&[("alice", "secret")]);
    let mut cache = LoginCache::new();
    for _ in 0..2 {
        assert_eq!(
            cache.verify(&pw, "alice", Some(b"guess")),
            AuthResult::WrongPassword
        );
    }
    assert!(cache.is_empty());
    assert_eq!(cache.hits(), 0);
    // Nor by a caller that records a refusal.
    cache.record(&pw, "alice", b"guess", &AuthResult::WrongPassword);
    assert!(cache.is_empty());
    assert!(!cache.accepts(&pw, "alice", b"guess"));
    // A good login remembered does not make a wrong one good.
    assert!(cache.verify(&pw, "alice", Some(b"secret")).is_accepted());
    assert_eq!(
        cache.verify(&pw, "alice", Some(b"guess")),
        AuthResult::WrongPassword
    );
}

#[test]
fn a_remembered_login_is_used_only_while_the_entry_keeps_its_hash() {
    let before = file(&[("alice", "secret"), ("bob", "b")]);
    let mut cache = LoginCache::new();
    assert!(cache
        .verify(&before, "alice", Some(b"secret"))
        .is_accepted());
    assert!(cache.verify(&before, "bob", Some(b"b")).is_accepted());

    // The same password hashed again (new salt): the old memory is not used, the login verifies.
    let rehashed = file(&[("alice", "secret"), ("bob", "b")]);
    let misses = cache.misses();
    assert!(cache
        .verify(&rehashed, "alice", Some(b"secret"))
        .is_accepted());
    assert_eq!(cache.misses(), misses + 1);

    // A changed password: the old one is refused although it is remembered for `before`.
    let mut cache = LoginCache::new();
    assert!(cache
        .verify(&before, "alice", Some(b"secret"))
        .is_accepted());
    let changed = file(&[("alice", "new"), ("bob", "b")]);
    assert!(!cache.accepts(&changed, "alice", b"secret"));
    assert_eq!(
        cache.verify(&changed, "alice", Some(b"secret")),
        AuthResult::WrongPassword
    );
    // A removed user.
    let removed = file(&[("bob", "b")]);
    assert_eq!(
        cache.verify(&removed, "alice", Some(b"secret")),
        AuthResult::UnknownUser
    );
    // An entry whose hash field is unchanged, in a file read again: still a hit.
    assert!(cache.verify(&before, "bob", Some(b"b")).is_accepted());
    let same = before.entry_hash("bob").unwrap().to_vec();
    let text = format!("# moved\nbob:{}\n", String::from_utf8(same).unwrap());
    let reparsed = PasswordFile::parse("pw", text.as_bytes());
    assert!(cache.accepts(&reparsed, "bob", b"b"));
}

#[test]
fn clear_forgets_every_login() {
    let pw = file(&[("alice", "secret")]);
    let mut cache = LoginCache::new();
    assert!(cache.verify(&pw, "alice", Some(b"secret")).is_accepted());
    cache.clear();
    assert!(cache.is_empty());
    assert!(!cache.accepts(&pw, "alice", b"secret"));
}

#[test]
fn username_and_password_cannot_shift_into_each_other() {
    let key = [7u8; 32];
    assert_ne!(
        LoginCache::mac(&key, LOGIN, b"ab", b"c"),
        LoginCache::mac(&key, LOGIN, b"a", b"bc")
    );
    assert_ne!(
        LoginCache::mac(&key, LOGIN, b"", b"ab"),
        LoginCache::mac(&key, LOGIN, b"ab", b"")
    );
}

#[test]
fn keys_are_keyed_macs_with_a_fresh_key_per_cache() {
    let pw = file(&[("alice", "secret")]);
    let (a, b) = (LoginCache::new(), LoginCache::new());
    let (ka, va) = a.tags(&pw, "alice", b"secret").unwrap();
    let (kb, vb) = b.tags(&pw, "alice", b"secret").unwrap();
    assert_ne!(ka, kb);
    assert_ne!(va, vb);
    // Neither is an unkeyed hash of the credentials.
    use sha2::Digest;
    for unkeyed in [
        Sha256::digest(b"secret"),
        Sha256::digest(b"alicesecret"),
        Sha256::digest([&6u64.to_be_bytes()[..], b"secret"].concat()),
    ] {
        assert_ne!(ka[..], unkeyed[..]);
    }
}

#[test]
fn nothing_stored_contains_the_password() {
    let pw = file(&[("alice", "a-long-password-0123456789abcdef")]);
    let mut cache = LoginCache::new();
    assert!(cache
        .verify(&pw, "alice", Some(b"a-long-password-0123456789abcdef"))
        .is_accepted());
    let secret = b"a-long-password-0123456789abcdef";
    for (k, v) in &cache.entries {
        for stored in [&k[..], &v[..]] {
            assert!(!stored.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
        }
    }
    assert!(!format!("{cache:?}").contains("a-long-password"));
}

#[test]
fn the_cache_holds_at_most_its_capacity_dropping_the_oldest() {
    let users: Vec<(String, String)> = (0..5).map(|i| (format!("u{i}"), format!("p{i}"))).collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let pw = file(&refs);
    let mut cache = LoginCache::with_capacity(3);
    for (u, p) in &refs {
        assert!(cache.verify(&pw, u, Some(p.as_bytes())).is_accepted());
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.order.len(), 3);
    assert!(!cache.accepts(&pw, "u0", b"p0"));
    assert!(!cache.accepts(&pw, "u1", b"p1"));
    assert!(cache.accepts(&pw, "u2", b"p2"));
    assert!(cache.accepts(&pw, "u4", b"p4"));
    // Logging in again does not grow it.
    assert!(cache.verify(&pw, "u4", Some(b"p4")).is_accepted());
    assert_eq!(cache.len(), 3);
    assert_eq!(LoginCache::new().capacity, CAPACITY);
}

#[test]
fn a_damaged_cache_only_causes_a_verification() {
    let pw = file(&[("alice", "secret")]);
    for (keys, values) in [(true, false), (false, true), (true, true)] {
        let mut cache = LoginCache::new();
        assert!(cache.verify(&pw, "alice", Some(b"secret")).is_accepted());
        cache.damage(keys, values);
        let misses = cache.misses();
        assert!(cache.verify(&pw, "alice", Some(b"secret")).is_accepted());
        assert_eq!(
            cache.misses(),
            misses + 1,
            "damaged keys {keys}, values {values}"
        );
        assert_eq!(
            cache.verify(&pw, "alice", Some(b"guess")),
            AuthResult::WrongPassword
        );
        assert_eq!(cache.verify(&pw, "alice", None), AuthResult::NoPassword);
    }
}

#[test]
fn a_password_up_to_its_nul_is_the_same_password_but_not_the_same_key() {
    let pw = file(&[("alice", "secret")]);
    let mut cache = LoginCache::new();
    assert!(cache.verify(&pw, "alice", Some(b"secret\0x")).is_accepted());
    assert!(!cache.accepts(&pw, "alice", b"secret"));
    assert!(cache.verify(&pw, "alice", Some(b"secret")).is_accepted());
}
