//! The Mosquitto releases the tests run on: Debian 12's `/usr/sbin/mosquitto` (2.0.11) and the vendored
//! upstream 2.0.22 and 2.1.2, which `scripts/build-mosquitto.sh` builds once per test process (and
//! caches under `target/mosquitto/`, keyed by the tarball's sha256, across processes).
//!
//! [`per_version!`](crate::per_version) turns one test body `fn NAME(version: Version)` (or an `async`
//! one) into a module `NAME` with one test per release, named `mosquitto_2_0_11`, `mosquitto_2_0_22`,
//! `mosquitto_2_1_2`: `cargo test --release --test mosquitto -- mosquitto_2_1_2` runs one release.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A Mosquitto release under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Debian 12's package: `/usr/sbin/mosquitto`.
    Debian2011,
    /// Upstream 2.0.22, built from `../shared/vendor/`.
    Upstream2022,
    /// Upstream 2.1.2, built from `../shared/vendor/`. Its `acl_file` and `password_file` are the
    /// acl-file and password-file plugins compiled into the broker.
    Upstream212,
}

/// Debian's broker.
const DEBIAN_MOSQUITTO: &str = "/usr/sbin/mosquitto";

impl Version {
    /// Every release, oldest first.
    pub const ALL: [Version; 3] = [
        Version::Debian2011,
        Version::Upstream2022,
        Version::Upstream212,
    ];

    /// The release number, e.g. `2.1.2`.
    pub fn number(self) -> &'static str {
        match self {
            Version::Debian2011 => "2.0.11",
            Version::Upstream2022 => "2.0.22",
            Version::Upstream212 => "2.1.2",
        }
    }

    /// `true` for the 2.1 line.
    pub fn is_2_1(self) -> bool {
        self == Version::Upstream212
    }

    /// The semantics the plugin (and the engine) must apply on this release: `2.0` or `2.1`, as
    /// `mqtt-policy check --mosquitto` spells it.
    pub fn semantics(self) -> &'static str {
        if self.is_2_1() {
            "2.1"
        } else {
            "2.0"
        }
    }

    /// The broker executable, building it first (once per test process) for the vendored releases.
    /// Panics with `scripts/build-mosquitto.sh`'s message when the build fails.
    pub fn binary(self) -> PathBuf {
        static BUILT_2022: OnceLock<PathBuf> = OnceLock::new();
        static BUILT_212: OnceLock<PathBuf> = OnceLock::new();
        match self {
            Version::Debian2011 => {
                let path = PathBuf::from(DEBIAN_MOSQUITTO);
                assert!(
                    path.exists(),
                    "{DEBIAN_MOSQUITTO} is missing: install Debian's mosquitto package \
                     (apt-get install mosquitto mosquitto-clients)"
                );
                path
            }
            Version::Upstream2022 => BUILT_2022.get_or_init(|| build(self)).join("mosquitto"),
            Version::Upstream212 => BUILT_212.get_or_init(|| build(self)).join("mosquitto"),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mosquitto {}", self.number())
    }
}

/// Runs `scripts/build-mosquitto.sh VERSION` and returns the folder it printed.
fn build(version: Version) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-mosquitto.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(version.number())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/build-mosquitto.sh {} failed ({}):\n{}{stdout}",
        version.number(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        dir.join("mosquitto").exists(),
        "scripts/build-mosquitto.sh {} printed {dir:?}, which holds no mosquitto",
        version.number()
    );
    dir
}

/// Defines one test per [`Version`] for a body `fn NAME(version: Version)`: a module `NAME` with
/// `mosquitto_2_0_11`, `mosquitto_2_0_22` and `mosquitto_2_1_2`. `per_version!(async NAME)` does the
/// same for an `async fn`, as `#[tokio::test]`s.
#[macro_export]
macro_rules! per_version {
    (async $name:ident) => {
        mod $name {
            use $crate::support::versions::Version;
            #[tokio::test]
            async fn mosquitto_2_0_11() {
                super::$name(Version::Debian2011).await
            }
            #[tokio::test]
            async fn mosquitto_2_0_22() {
                super::$name(Version::Upstream2022).await
            }
            #[tokio::test]
            async fn mosquitto_2_1_2() {
                super::$name(Version::Upstream212).await
            }
        }
    };
    ($name:ident) => {
        mod $name {
            use $crate::support::versions::Version;
            #[test]
            fn mosquitto_2_0_11() {
                super::$name(Version::Debian2011)
            }
            #[test]
            fn mosquitto_2_0_22() {
                super::$name(Version::Upstream2022)
            }
            #[test]
            fn mosquitto_2_1_2() {
                super::$name(Version::Upstream212)
            }
        }
    };
}
