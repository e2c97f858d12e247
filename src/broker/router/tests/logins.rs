//! CONNECTs whose password is checked off the router: the router keeps serving meanwhile, and
//! completes them safely when the verdict comes back.

use super::*;

/// The [`Action::Verify`] among `actions`, as the event a worker sends back.
fn verdict(actions: &[Action]) -> Option<Event> {
    actions.iter().find_map(Action::verified_now)
}

fn connect_event(conn: ConnId, id: &str, user: &str, password: &str) -> Event {
    Event::Connect {
        conn,
        address: "10.0.0.1".into(),
        login: Login::Credentials,
        connect: Box::new(Connect {
            version: Version::V5,
            client_id: id.into(),
            clean_start: true,
            keep_alive: 60,
            username: Some(user.to_owned()),
            password: Some(password.as_bytes().to_vec()),
            will: None,
            properties: Properties::default(),
        }),
    }
}

fn connack(actions: &[Action], conn: ConnId) -> Option<ConnectReason> {
    sent(actions, conn).into_iter().find_map(|p| match p {
        Packet::ConnAck(a) => Some(a.reason),
        _ => None,
    })
}

#[test]
fn other_clients_are_served_while_a_password_is_checked() {
    let mut t = with_users(true);
    t.connect(1, "sub", Version::V5, true);
    t.subscribe(1, "a/#", QoS::AtMostOnce);
    t.connect(2, "pub", Version::V5, true);
    let asked = t.raw(connect_event(3, "slow", "user1", "123456"));
    assert!(
        connack(&asked, 3).is_none(),
        "no CONNACK before the verdict"
    );
    let check = verdict(&asked).expect("a password check is asked for");
    assert_eq!(t.r.pending_logins(), 1);
    // Meanwhile a message goes through.
    let delivered = t.publish(2, "a/b", QoS::AtMostOnce, 0);
    assert_eq!(publishes(&delivered, 1).len(), 1);
    // Packets of the waiting client wait with it, and are handled once it is in.
    assert!(t.subscribe(3, "a/#", QoS::AtMostOnce).is_empty());
    let done = t.raw(check);
    assert_eq!(connack(&done, 3), Some(ConnectReason::Success));
    assert!(sent(&done, 3)
        .iter()
        .any(|p| matches!(p, Packet::SubAck(_))));
    assert_eq!(t.r.pending_logins(), 0);
}

#[test]
fn a_wrong_password_checked_off_the_router_is_refused_and_audited() {
    let mut t = with_users(true);
    let asked = t.raw(connect_event(1, "c", "user1", "nope"));
    let done = t.raw(verdict(&asked).unwrap());
    assert_eq!(connack(&done, 1), Some(ConnectReason::BadCredentials));
    assert!(done
        .iter()
        .any(|a| matches!(a, Action::Audit(r) if r.to_json().contains("wrong_password"))));
    assert!(done.iter().any(|a| matches!(a, Action::Close { conn: 1 })));
    assert!(!t.r.sessions.contains_key("c"));
}

#[test]
fn a_verdict_for_a_client_that_left_is_dropped() {
    let mut t = with_users(true);
    let asked = t.raw(connect_event(1, "gone", "user1", "123456"));
    let check = verdict(&asked).unwrap();
    t.raw(Event::Closed { conn: 1 });
    assert_eq!(t.r.pending_logins(), 0);
    let done = t.raw(check);
    assert!(done.is_empty(), "{done:?}");
    assert!(!t.r.sessions.contains_key("gone"));
}

#[test]
fn a_verdict_reached_before_a_reload_is_checked_again_under_the_new_policy() {
    let mut t = with_users(true);
    let asked = t.raw(connect_event(1, "c", "user1", "123456"));
    let check = verdict(&asked).unwrap();
    // user1 leaves the password file while the check runs.
    t.r.set_security(Arc::new(security(&["user2"], true)));
    let done = t.ev(check);
    assert_eq!(connack(&done, 1), Some(ConnectReason::BadCredentials));
    assert!(done
        .iter()
        .any(|a| matches!(a, Action::Audit(r) if r.to_json().contains("unknown_user"))));
    // And one still in the file is accepted after its second check.
    let asked = t.raw(connect_event(2, "d", "user2", "abc"));
    let check = verdict(&asked).unwrap();
    t.r.set_security(Arc::new(security(&["user2"], true)));
    let again = t.raw(check);
    assert!(
        connack(&again, 2).is_none(),
        "checked again, not accepted on the old verdict"
    );
    let done = t.raw(verdict(&again).expect("a second check"));
    assert_eq!(connack(&done, 2), Some(ConnectReason::Success));
}

#[test]
fn a_login_that_verified_before_is_answered_from_the_cache_until_a_reload() {
    let mut t = with_users(true);
    let asked = t.raw(connect_event(1, "c", "user1", "123456"));
    t.raw(verdict(&asked).unwrap());
    t.raw(Event::Closed { conn: 1 });
    let again = t.raw(connect_event(2, "c", "user1", "123456"));
    assert!(verdict(&again).is_none(), "no password check");
    assert_eq!(connack(&again, 2), Some(ConnectReason::Success));
    // A wrong password is still checked (and refused).
    let wrong = t.raw(connect_event(3, "w", "user1", "654321"));
    let done = t.raw(verdict(&wrong).expect("checked"));
    assert_eq!(connack(&done, 3), Some(ConnectReason::BadCredentials));
    // After a reload the cache is empty: the next login is checked again. (A client still
    // connected would be checked again by the reload itself, which fills the cache anew.)
    t.raw(Event::Closed { conn: 2 });
    t.r.set_security(Arc::new(security(&["user1"], true)));
    let mut drained = Vec::new();
    t.r.drain_actions(&mut drained);
    let after = t.raw(connect_event(4, "e", "user1", "123456"));
    assert!(verdict(&after).is_some(), "checked again after the reload");
}

#[test]
fn the_shadow_password_file_is_checked_on_the_worker_and_a_login_seen_before_is_answered_at_once() {
    use crate::enforce::shadow::Shadow;
    use crate::policy::passwd::{hash_password, HashKind, PasswordFile};
    let mut t = T::new("");
    // The candidate file gives user1 another password: every login of user1 is a disagreement.
    let line = format!(
        "user1:{}\n",
        hash_password(b"changed", HashKind::Sha512Pbkdf2, Some(101))
    );
    let candidate = PasswordFile::parse("shadow.txt", line.as_bytes());
    let shadow = Shadow::new(None, Some(Arc::new(candidate)));
    t.r.set_security(Arc::new(security(&["user1"], true).with_shadow(shadow)));
    let shadow_records = |actions: &[Action]| {
        actions
            .iter()
            .filter(
                |a| matches!(a, Action::Audit(r) if r.to_json().contains("\"kind\":\"shadow\"")),
            )
            .count()
    };

    let asked = t.raw(connect_event(1, "c", "user1", "123456"));
    assert!(
        asked.iter().any(|a| matches!(
            a,
            Action::Verify {
                shadow: Some(_),
                ..
            }
        )),
        "the shadow is checked with the live file, on the worker: {asked:?}"
    );
    let done = t.raw(verdict(&asked).unwrap());
    assert_eq!(
        connack(&done, 1),
        Some(ConnectReason::Success),
        "the live file decides"
    );
    assert_eq!(shadow_records(&done), 1);

    // Known to both caches (the shadow remembers what it refused): answered at once, still compared.
    t.raw(Event::Closed { conn: 1 });
    let again = t.raw(connect_event(2, "c", "user1", "123456"));
    assert!(verdict(&again).is_none(), "no password check");
    assert_eq!(connack(&again, 2), Some(ConnectReason::Success));
    assert_eq!(shadow_records(&again), 1);
}
