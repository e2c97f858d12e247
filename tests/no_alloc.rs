//! A read or write decision allocates nothing: proved with a counting global allocator.
//! This file holds a single test so no other test thread allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mqtt_policy::policy::acl::Policy;
use mqtt_policy::policy::{Access, ClientRef};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn read_and_write_decisions_allocate_nothing() {
    let mut acl = String::from("topic read public/#\npattern readwrite +/+/+/%u\npattern write d/%u-x/%c\npattern deny clients/%c/private\npattern readwrite clients/%c/#\n");
    for i in 0..2000 {
        acl.push_str(&format!("user user{i}\ntopic readwrite own/{i}/#\ntopic deny own/{i}/secret\npattern read p{i}/%u\n"));
    }
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).unwrap();
    let clients = [
        ClientRef {
            username: Some("user7"),
            client_id: "c7",
        },
        ClientRef {
            username: Some("nobody"),
            client_id: "a/b",
        },
        ClientRef {
            username: None,
            client_id: "anon",
        },
        ClientRef {
            username: Some("ev+l"),
            client_id: "e",
        },
    ];
    let topics = [
        "colombia/cundinamarca/cajica/user7",
        "panama/colon/user7",
        "own/7/x",
        "own/7/secret",
        "d/user7-x/c7",
        "clients/a/b/private",
        "clients/anon/x",
        "public/news",
        "$SYS/broker/load",
        "p1999/user7",
        "a//c/nobody",
    ];
    let mut allowed = 0;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for client in clients {
        for topic in topics {
            for access in [Access::Read, Access::Write] {
                if policy.decide(client, topic, access).is_allowed() {
                    allowed += 1;
                }
            }
        }
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "decisions allocated {} times",
        after - before
    );
    // The loop decided real things: some allowed, some denied.
    assert!(allowed > 5 && allowed < 80, "allowed {allowed}");
}
