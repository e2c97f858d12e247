//! Nanoseconds per ACL decision at three sizes: the tutorial's three lines; 10,000 `pattern` lines plus
//! 10,000 `user` blocks; 100,000 users; SUBSCRIBE checks with the 10,000 patterns; and the same write
//! decided plain, counted by the metrics registry, and compared with a shadow policy. Run with
//! `cargo bench --bench engine`.

use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use std::sync::Arc;
use std::time::SystemTime;

use mqtt_policy::enforce::metrics::{Metrics, RuleHits};
use mqtt_policy::enforce::shadow::{Compared, Shadow};
use mqtt_policy::policy::acl::Policy;
use mqtt_policy::policy::{Access, ClientRef};

const TUTORIAL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

fn large_patterns_and_users() -> String {
    let mut acl = String::from(TUTORIAL);
    for i in 0..10_000 {
        acl.push_str(&format!("pattern readwrite site{i}/+/%u/#\n"));
    }
    for i in 0..10_000 {
        acl.push_str(&format!(
            "user u{i}\ntopic readwrite home/u{i}/#\ntopic deny home/u{i}/locked\n"
        ));
    }
    acl
}

fn many_users() -> String {
    let mut acl = String::from(TUTORIAL);
    for i in 0..100_000 {
        acl.push_str(&format!(
            "user u{i}\ntopic readwrite home/u{i}/#\ntopic read shared/+/status\n"
        ));
    }
    acl
}

fn bench_policy(c: &mut Criterion, name: &str, acl: &str, user: &str) {
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).expect("valid acl");
    let client = ClientRef {
        username: Some(user),
        client_id: "client-1",
    };
    let mut group = c.benchmark_group(name);
    let allowed = format!("colombia/cundinamarca/cajica/{user}");
    let own = format!("home/{user}/kitchen/temp");
    group.bench_function("write allowed by pattern +/+/+/%u", |b| {
        b.iter(|| policy.decide(black_box(client), black_box(&allowed), Access::Write))
    });
    group.bench_function("write denied, three levels", |b| {
        b.iter(|| {
            policy.decide(
                black_box(client),
                black_box("panama/colon/user1"),
                Access::Write,
            )
        })
    });
    group.bench_function("read own user block topic", |b| {
        b.iter(|| policy.decide(black_box(client), black_box(&own), Access::Read))
    });
    group.finish();
}

/// SUBSCRIBE checks with 10,000 patterns whose first levels all differ, for a client the patterns must be
/// searched for (no own list): the filters that cannot be narrowed by a first level are the costly ones.
fn bench_subscribe(c: &mut Criterion) {
    let policy =
        Policy::from_acl("acl.txt", large_patterns_and_users().as_bytes()).expect("valid acl");
    let client = ClientRef {
        username: Some("bench"),
        client_id: "client-1",
    };
    let mut group = c.benchmark_group("subscribe, 10k patterns + 10k users");
    for filter in ["+/+/x/y", "+/x", "#", "site5/+/bench/#", "a/b"] {
        group.bench_function(filter, |b| {
            b.iter(|| policy.decide(black_box(client), black_box(filter), Access::Subscribe))
        });
    }
    group.finish();
}

/// What metrics and a shadow policy add to one decision (10,000 patterns + 10,000 users, a write allowed by
/// the tutorial's pattern): the plain decision, the decision counted (and one in 64 timed), and the
/// decision compared with a shadow policy that agrees (the candidate decides too).
fn bench_observed(c: &mut Criterion) {
    let acl = large_patterns_and_users();
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).expect("valid acl");
    let shadow = Shadow::new(
        Some(Policy::from_acl("shadow.txt", acl.as_bytes()).expect("valid acl")),
        None,
    );
    let metrics = Metrics::new();
    let hits = Arc::new(RuleHits::new(Some(&policy)));
    let client = ClientRef {
        username: Some("u5000"),
        client_id: "client-1",
    };
    let topic = "colombia/cundinamarca/cajica/u5000";
    let mut group = c.benchmark_group("observed, 10k patterns + 10k users");
    group.bench_function("decide", |b| {
        b.iter(|| policy.decide(black_box(client), black_box(topic), Access::Write))
    });
    group.bench_function("decide, counted by metrics", |b| {
        b.iter(|| {
            metrics.decide(Access::Write, &hits, || {
                policy.decide(black_box(client), black_box(topic), Access::Write)
            })
        })
    });
    group.bench_function("decide, compared with a shadow that agrees", |b| {
        b.iter(|| {
            let d = policy.decide(black_box(client), black_box(topic), Access::Write);
            let compared = shadow.compare_acl(
                client,
                topic,
                Access::Write,
                d,
                || unreachable!("they agree"),
                None,
                SystemTime::UNIX_EPOCH,
                None,
            );
            matches!(compared, Compared::Agree)
        })
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    bench_policy(c, "tutorial (3 lines)", TUTORIAL, "u5000");
    bench_policy(
        c,
        "10k patterns + 10k users",
        &large_patterns_and_users(),
        "u5000",
    );
    bench_policy(c, "100k users", &many_users(), "u50000");
    bench_subscribe(c);
    bench_observed(c);
}

// The macro defines an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::engine);
}
use group::benches;

criterion_main!(benches);
