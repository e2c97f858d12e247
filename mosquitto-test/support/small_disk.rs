//! A small tmpfs for one test, to fill a file system on purpose (a full disk under an audit log or a
//! message store). Shared by the mosquitto tests and the broker's persistence tests.

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct SmallDisk {
    /// Where it is mounted.
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `256k`) at `path`, creating the
    /// directory. `None` where this process may not mount (not root, or no permission in this container).
    pub fn mount(path: PathBuf, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
