//! The read decisions of one message's deliveries, remembered by username while it is routed
//! (`Authorizer::authorize_delivery`): never where the client id could change the answer.

use super::*;
use crate::policy::acl::Policy;

/// Anonymous clients `c0`..`c9` (and `extra`), all subscribed to `t/#`, under `acl`; a publisher `p`.
fn subscribers(acl: &str, extra: &[&str]) -> (T, Vec<String>) {
    let mut t = T::new("");
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).unwrap();
    t.r.set_security(Arc::new(Security::new(Some(policy), None, true)));
    let mut ids: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    ids.extend(extra.iter().map(|s| s.to_string()));
    for (conn, id) in ids.iter().enumerate() {
        t.connect(conn as ConnId + 1, id, Version::V311, true);
        t.subscribe(conn as ConnId + 1, "t/#", QoS::AtMostOnce);
    }
    t.connect(100, "p", Version::V311, true);
    (t, ids)
}

/// The client ids that received `topic`, published by `p`.
fn receivers(t: &mut T, ids: &[String], topic: &str) -> Vec<String> {
    let actions = t.publish(100, topic, QoS::AtMostOnce, 0);
    ids.iter()
        .enumerate()
        .filter(|(conn, _)| !publishes(&actions, *conn as ConnId + 1).is_empty())
        .map(|(_, id)| id.clone())
        .collect()
}

#[test]
fn a_pattern_with_percent_c_is_decided_for_each_client() {
    let (mut t, ids) = subscribers("topic write t/#\npattern read t/%c\n", &[]);
    for i in 0..10 {
        assert_eq!(
            receivers(&mut t, &ids, &format!("t/c{i}")),
            [format!("c{i}")]
        );
    }
}

#[test]
fn a_client_id_with_a_wildcard_is_refused_the_patterns_even_after_others_were_allowed() {
    // `topic read t/own` (the anonymous clients' own rule) lets every client subscribe to `t/#`;
    // `t/a` is theirs through the pattern only.
    let acl = "topic write t/#\ntopic read t/own\npattern read t/#\n";
    let (mut t, ids) = subscribers(acl, &["x+y", "x#"]);
    assert_eq!(receivers(&mut t, &ids, "t/own"), ids);
    let got = receivers(&mut t, &ids, "t/a");
    assert_eq!(got, ids[..10], "every client but the two with wildcards");
}

#[test]
fn clients_with_the_same_username_all_receive_what_it_may_read() {
    let (mut t, ids) = subscribers("topic readwrite t/#\n", &[]);
    assert_eq!(receivers(&mut t, &ids, "t/a"), ids);
}
