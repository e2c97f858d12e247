//! `mqtt-policy serve --tls-cert FILE --tls-key FILE`: HTTPS with a certificate made by openssl, checked
//! by a rustls client against its CA; plain HTTP on that port gets no answer; a client that stops
//! mid-handshake holds up nobody else; a key that does not belong to the certificate, or a file that
//! is not PEM, stops the start naming the file.

mod broker_support;
mod serve_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serve_support::{serve_fails, tutorial_files, Serve};

/// `GET path` over TLS, checking the server's certificate against `ca`; the whole answer.
fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    // The server closes without close_notify after `Connection: close` at times; what came is kept.
    let _ = tls.read_to_string(&mut answer);
    answer
}

fn with_certs(dir: &Path) {
    tutorial_files(dir);
    broker_support::make_certs(dir);
}

const TLS: [&str; 4] = [
    "--tls-cert",
    "{dir}/server.crt",
    "--tls-key",
    "{dir}/server.key",
];

fn tls_args(dir: &Path) -> Vec<String> {
    TLS.iter()
        .map(|a| a.replace("{dir}", &dir.display().to_string()))
        .collect()
}

#[test]
fn serves_https_with_the_given_certificate_and_nothing_in_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    with_certs(dir.path());
    let mut args = vec!["-c", "{dir}/mosquitto.conf", "--listen", "127.0.0.1:0"];
    let tls = tls_args(dir.path());
    args.extend(tls.iter().map(String::as_str));
    let s = Serve::start_in(dir.path(), &args);
    assert!(s.log().contains("listening on https://"), "{}", s.log());

    // A client that connects and says nothing does not hold up the handshake of another.
    let _silent = TcpStream::connect(s.addr).unwrap();
    let answer = https_get(s.addr, &dir.path().join("ca.crt"), "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.ends_with("ok\n"), "{answer:?}");

    // Plain HTTP on the HTTPS port: no HTTP answer.
    let mut plain = TcpStream::connect(s.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(s.stop());
}

#[test]
fn a_key_of_another_certificate_or_a_file_that_is_not_pem_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    with_certs(dir.path());
    let conf = "{dir}/mosquitto.conf";
    let start_with = |cert: &str, key: &str| {
        serve_fails(
            dir.path(),
            &[
                "-c",
                conf,
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ],
        )
    };
    // ca.key belongs to ca.crt, not to server.crt.
    let (code, err) = start_with("{dir}/server.crt", "{dir}/ca.key");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ca.key") && err.contains("server.crt"),
        "{err}"
    );
    std::fs::write(dir.path().join("not.pem"), "hello\n").unwrap();
    let (code, err) = start_with("{dir}/not.pem", "{dir}/server.key");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("not.pem"),
        "{err}"
    );
    // One without the other is a usage error.
    let (code, err) = serve_fails(dir.path(), &["-c", conf, "--tls-cert", "{dir}/server.crt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tls-key"), "{err}");
}
