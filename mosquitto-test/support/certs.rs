//! [`TestPki`]: a private CA and a server certificate for `127.0.0.1` / `localhost`, made with the
//! `openssl` command line (as the tutorial does), plus the matching rustls client configuration.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::broker::write_readable;
use super::process::run_checked;

/// A CA and a server certificate signed by it, in a temporary directory that lives as long as this value.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA certificate, PEM (`cafile`; what clients trust).
    pub ca_cert: PathBuf,
    /// The server certificate, PEM, with SAN `IP:127.0.0.1, DNS:localhost` (`certfile`).
    pub server_cert: PathBuf,
    /// The server's private key, PEM (`keyfile`).
    pub server_key: PathBuf,
}

const OPENSSL_LIMIT: Duration = Duration::from_secs(30);

impl TestPki {
    /// Generates the CA and the server certificate (P-256 keys, valid for two days).
    pub fn generate() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("mosquitto-test-pki.")
            .tempdir()
            .expect("create a temporary directory");
        let p = |name: &str| dir.path().join(name);
        const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(
            dir.path(),
            &format!("req -x509 {EC} -days 2 -keyout ca.key -out ca.crt"),
            &[
                "-subj",
                "/CN=mqtt-policy test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            dir.path(),
            &format!("req {EC} -keyout server.key -out server.csr"),
            &["-subj", "/CN=localhost"],
        );
        write_readable(
            &p("server.ext"),
            b"subjectAltName=IP:127.0.0.1,DNS:localhost\n\
              basicConstraints=critical,CA:FALSE\n\
              keyUsage=critical,digitalSignature\n\
              extendedKeyUsage=serverAuth\n",
        );
        openssl(
            dir.path(),
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out server.crt",
            &[],
        );
        openssl(dir.path(), "x509 -in ca.crt -outform DER -out ca.der", &[]);
        for name in ["ca.crt", "server.crt", "server.key"] {
            let bytes = std::fs::read(p(name)).expect("read generated file");
            write_readable(&p(name), &bytes);
        }
        TestPki {
            ca_cert: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Listener lines for a TLS 1.2 listener with this certificate, as the tutorial writes them.
    pub fn listener_config(&self) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\ntls_version tlsv1.2\n",
            self.ca_cert.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }

    /// A rustls client configuration (ring provider) that trusts only this CA and speaks only TLS 1.2.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let der = std::fs::read(self.dir.path().join("ca.der")).expect("read ca.der");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(der))
            .expect("the test CA is a valid trust anchor");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("ring supports TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }
}

/// Runs `openssl` in `dir` with the space-separated `words` followed by `more` (arguments that contain
/// spaces).
fn openssl(dir: &Path, words: &str, more: &[&str]) {
    run_checked(
        Command::new("openssl")
            .current_dir(dir)
            .args(words.split_whitespace())
            .args(more),
        OPENSSL_LIMIT,
    );
}
