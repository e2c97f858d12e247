//! Child processes that never outlive a test: [`ChildGuard`] kills and reaps on drop, [`run_checked`]
//! runs a command to completion and fails the test with its output when it does not succeed.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How often loops that wait on a process or a port look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Owns a child process; dropping it sends SIGKILL (if still running) and reaps it.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `command`, naming it `what` in failure messages. Panics when it cannot be started.
    pub fn spawn(command: &mut Command, what: &str) -> ChildGuard {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({command:?}): {e}"));
        ChildGuard {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// Takes the child's piped stdout. Panics if stdout was not piped or was already taken.
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        let what = self.what.clone();
        self.child_mut()
            .stdout
            .take()
            .unwrap_or_else(|| panic!("{what}: stdout not piped"))
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let what = self.what.clone();
        self.child_mut()
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot poll {what}: {e}"))
    }

    /// Waits at most `limit` for the process to end; `None` if it is still running then.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `signal` (a `libc::SIG*` number) to the process if it is still running.
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_wait().is_none() {
            let pid = libc::pid_t::try_from(self.id()).expect("pid fits pid_t");
            // SAFETY: kill(2) on our own, not yet reaped child; no memory is involved.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Waits at most `limit` for the process to end, then kills it; returns its stdout and stderr
    /// (when they were piped) and its status.
    pub fn finish(mut self, limit: Duration) -> Output {
        if self.wait_for(limit).is_none() {
            self.signal(libc::SIGKILL);
        }
        let mut child = self.child.take().expect("child present until finished");
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_end(&mut stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_end(&mut stderr);
        }
        let status = child
            .wait()
            .unwrap_or_else(|e| panic!("cannot reap {}: {e}", self.what));
        Output {
            status,
            stdout,
            stderr,
        }
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("child present until finished")
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until finished")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` with piped output, at most `limit` long; panics (showing stdout and stderr) unless it
/// exits with status 0. Returns the output.
pub fn run_checked(command: &mut Command, limit: Duration) -> Output {
    let output = run_limited(command, limit);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `command` with piped output, killing it after `limit`. Returns whatever it produced.
///
/// Output is read after the process ends, so this is for commands with modest output (under the
/// pipe buffer, 64 KiB).
pub fn run_limited(command: &mut Command, limit: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{:?}", command.get_program());
    ChildGuard::spawn(command, &what).finish(limit)
}
