//! Worker threads for slow password checks, so that the thread serving every other client (the
//! broker's router, Mosquitto's main loop) only hands the check over and later reads the answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::policy::passwd::{AuthResult, PasswordFile};

/// A password on its way to a worker: zeroed when dropped, never printed.
pub struct Password(Vec<u8>);

impl Password {
    /// Takes the bytes (no other copy is made).
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(bytes)
    }

    /// The bytes, for a verification.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&mut self.0);
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What is called with the verdict, on the worker thread, with the username and password checked (for
/// a second check there, as the shadow policy's).
type Reply = Box<dyn FnOnce(AuthResult, &str, &[u8]) + Send>;

struct Job {
    passwords: Arc<PasswordFile>,
    username: String,
    password: Password,
    reply: Reply,
}

/// A fixed set of threads verifying passwords, in the order they were submitted.
pub struct VerifyPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set when the pool is dropped: queued checks are skipped.
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl VerifyPool {
    /// Starts `threads` workers (at least one) named `{name}-{i}`.
    pub fn start(name: &str, threads: usize) -> std::io::Result<VerifyPool> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut pool = VerifyPool {
            jobs: Some(tx),
            threads: Vec::new(),
            stopping,
        };
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let stopping = Arc::clone(&pool.stopping);
            // On an error the workers already started are stopped and joined by the pool's drop.
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&rx, &stopping))?;
            pool.threads.push(handle);
        }
        Ok(pool)
    }

    /// As many workers as the machine has cores.
    pub fn per_core(name: &str) -> std::io::Result<VerifyPool> {
        VerifyPool::start(
            name,
            std::thread::available_parallelism().map_or(2, usize::from),
        )
    }

    /// Queues a check of `password` for `username` against `passwords`; `reply` gets the verdict on
    /// a worker thread, with the username and password (zeroed after `reply` returns). If the workers are gone (they never stop while the pool lives), `reply` is
    /// not called.
    pub fn submit(
        &self,
        passwords: Arc<PasswordFile>,
        username: String,
        password: Password,
        reply: impl FnOnce(AuthResult, &str, &[u8]) + Send + 'static,
    ) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job {
                passwords,
                username,
                password,
                reply: Box::new(reply),
            });
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, stopping: &AtomicBool) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if stopping.load(Ordering::Relaxed) {
            // Dropped unanswered: nobody waits for it any more.
            return;
        }
        // A panic in a check (it should not happen) is answered as a refusal: the worker lives on
        // and the caller always gets a verdict.
        let Job {
            passwords,
            username,
            password,
            reply,
        } = job;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            passwords.verify(&username, Some(password.expose()))
        }))
        .unwrap_or(AuthResult::WrongPassword);
        reply(result, &username, password.expose());
        drop(password);
    }
}

impl Drop for VerifyPool {
    /// Stops the workers and waits for them: queued checks are dropped unanswered, a check under way
    /// finishes first (so at most one check's time). Joined, so that no worker still runs the
    /// plugin's code when Mosquitto unloads it after cleanup.
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::passwd::{hash_password, HashKind};
    use std::time::Duration;

    #[test]
    fn every_submitted_check_is_answered_by_a_worker_thread() {
        let line = format!("alice:{}\n", hash_password(b"pw", HashKind::Sha512, None));
        let passwords = Arc::new(PasswordFile::parse("pw", line.as_bytes()));
        let pool = VerifyPool::start("test-verify", 2).unwrap();
        let (tx, rx) = channel();
        let caller = std::thread::current().id();
        for (i, guess) in [&b"pw"[..], b"no", b"pw"].into_iter().enumerate() {
            let tx = tx.clone();
            pool.submit(
                Arc::clone(&passwords),
                "alice".to_owned(),
                Password::new(guess.to_vec()),
                move |r, _, _| {
                    let _ = tx.send((i, r, std::thread::current().id()));
                },
            );
        }
        let mut got: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        got.sort_by_key(|(i, ..)| *i);
        assert_eq!(got[0].1, AuthResult::Accepted);
        assert_eq!(got[1].1, AuthResult::WrongPassword);
        assert_eq!(got[2].1, AuthResult::Accepted);
        assert!(got.iter().all(|(_, _, thread)| *thread != caller));
        assert_eq!(
            format!("{:?}", Password::new(b"pw".to_vec())),
            "Password(<redacted>)"
        );
    }
}
