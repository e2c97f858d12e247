//! Raising the listen backlog of the broker's listeners (`plugin_opt_listen_backlog`).
//!
//! Mosquitto 2.0 and 2.1 listen with a fixed backlog of 100 (`listen(sock, 100)` in their
//! `src/net.c`). When a reconnect storm sends more connects at once than that, the kernel's accept
//! queue overflows, the overflowed SYNs are dropped, and those clients wait for TCP's 1 s
//! retransmission, however fast the broker logs them in. On Linux, `listen()` on a socket that is
//! already listening only sets its backlog, so the plugin can raise it without touching anything else.
//!
//! The plugin does not know the broker's sockets, so it looks at every descriptor of the process
//! (`/proc/self/fd`) and raises the backlog of those that are listening TCP sockets (IPv4 or IPv6).
//! Every such socket in a Mosquitto process is one of the broker's listeners (or the plugin's own
//! metrics listener). Unix-domain and UDP sockets, files and pipes are left alone.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, SockRef, Type};

/// Set by the first tick that ran [`raise_once`], so that the sockets are looked at once per process,
/// whatever the number of plugin instances (`per_listener_settings`) and ticks.
static DONE: AtomicBool = AtomicBool::new(false);

/// What [`raise_once`] did.
#[derive(Debug)]
pub enum Raised {
    /// An earlier call did the work (or it was asked not to be done).
    Already,
    /// The backlog of this many listening TCP sockets was set; `failed` more refused it.
    Sockets {
        /// Sockets whose backlog was set.
        raised: usize,
        /// Listening sockets whose `listen()` failed (their backlog is unchanged).
        failed: usize,
    },
    /// `/proc/self/fd` could not be read: nothing was changed.
    Unreadable(std::io::Error),
}

/// Raises the backlog of every listening TCP socket of the process to `backlog`, the first time it is
/// called with a non-zero `backlog`; later calls return [`Raised::Already`]. Runs on the broker's
/// thread (from a tick), so no listener is opened or closed while it looks.
pub fn raise_once(backlog: u32) -> Raised {
    // A load first: every tick calls this, and only the first needs the swap's write.
    if backlog == 0 || DONE.load(Ordering::Acquire) || DONE.swap(true, Ordering::AcqRel) {
        return Raised::Already;
    }
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let entries = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries,
        Err(e) => return Raised::Unreadable(e),
    };
    // The numbers first: the directory's own descriptor is open while it is read.
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let (mut raised, mut failed) = (0, 0);
    for fd in fds {
        // SAFETY: the descriptor is only borrowed for this iteration, on the broker's thread, which
        // opens and closes its sockets itself and is busy running this callback. A number closed
        // since it was listed (the directory's own) makes the calls below fail with EBADF; one the
        // plugin's own threads (metrics, password workers) reused meanwhile is at worst a file or a
        // connected socket: the calls only read its options or fail, and listen() is never reached.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&fd);
        let tcp_listener = matches!(socket.r#type(), Ok(t) if t == Type::STREAM)
            && matches!(socket.domain(), Ok(d) if d == Domain::IPV4 || d == Domain::IPV6)
            && matches!(socket.is_listener(), Ok(true));
        if !tcp_listener {
            continue;
        }
        match socket.listen(backlog) {
            Ok(()) => raised += 1,
            Err(_) => failed += 1,
        }
    }
    Raised::Sockets { raised, failed }
}
