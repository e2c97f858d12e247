//! Replacing a file atomically: write a temporary file in the same directory, then rename it over the
//! target, so that a broker reading the file (or a crash) never sees half of it.
//!
//! * A symbolic link is followed: the file it points to is replaced, as `mosquitto_passwd` edits it.
//! * An existing file keeps its permission bits, and its owner and group when we are allowed to set them
//!   (root is); otherwise the caller gets a warning naming the change.
//! * A new file gets mode 0600, as `mosquitto_passwd` does since 2.0.16 (Debian's 2.0.11 uses the umask,
//!   usually 0644). The broker must be able to read it: `chown mosquitto FILE` where it runs as `mosquitto`.
//! * Unlike `mosquitto_passwd`, no `FILE.tmp` backup is left behind or needed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of a file we create.
pub const NEW_FILE_MODE: u32 = 0o600;

/// The file a path names: a symbolic link's target, or the path itself when nothing exists there yet.
pub fn resolve(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Replaces `path`'s contents with `contents`, atomically. Returns warnings for the user (an owner that
/// could not be kept).
pub fn write(path: &Path, contents: &[u8]) -> io::Result<Vec<String>> {
    let target = resolve(path);
    let existing = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ))
        }
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "passwd".to_owned());
    let (temp_path, mut temp) = create_temp(&dir, &name)?;
    let result = fill(&mut temp, contents, existing.as_ref()).and_then(|warnings| {
        fs::rename(&temp_path, &target)?;
        Ok(warnings)
    });
    match result {
        Ok(warnings) => {
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(warnings)
        }
        Err(e) => {
            let _ = fs::remove_file(&temp_path);
            Err(e)
        }
    }
}

/// Creates a fresh, private temporary file next to the target.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last_error = None;
    for _ in 0..16 {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let suffix = u64::from_le_bytes(random);
        let path = dir.join(format!(".{name}.{suffix:016x}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Writes the contents and gives the temporary file the old file's mode and owner.
fn fill(
    file: &mut File,
    contents: &[u8],
    existing: Option<&fs::Metadata>,
) -> io::Result<Vec<String>> {
    let mut warnings = Vec::new();
    file.write_all(contents)?;
    let mode = existing.map_or(NEW_FILE_MODE, |meta| meta.mode() & 0o7777);
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(meta) = existing {
        let mine = file.metadata()?;
        if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid())
            && std::os::unix::fs::fchown(&*file, Some(meta.uid()), Some(meta.gid())).is_err()
        {
            warnings.push(format!(
                "the file was owned by uid {} gid {}; it is now owned by uid {} gid {} (not allowed to keep the owner)",
                meta.uid(),
                meta.gid(),
                mine.uid(),
                mine.gid()
            ));
        }
        if mode & 0o7000 != 0 {
            // chown clears set-id bits; put them back.
            let _ = file.set_permissions(fs::Permissions::from_mode(mode));
        }
    }
    file.sync_all()?;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_file_and_keeps_an_existing_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.txt");
        assert!(write(&path, b"a\n").unwrap().is_empty());
        assert_eq!(fs::read(&path).unwrap(), b"a\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(write(&path, b"b\n").unwrap().is_empty());
        assert_eq!(fs::read(&path).unwrap(), b"b\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn follows_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        let link = dir.path().join("link.txt");
        fs::write(&real, b"old\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, b"new\n").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new\n");
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), b"x").is_err());
    }
}
