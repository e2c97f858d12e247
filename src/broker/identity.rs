//! Usernames taken from client certificates, as Mosquitto 2.0 takes them on a TLS listener with
//! `use_identity_as_username true` (the subject's Common Name) or `use_subject_as_username true` (the
//! whole subject, printed as OpenSSL's `X509_NAME_print_ex(..., XN_FLAG_RFC2253)` prints it).
//!
//! On such a listener Mosquitto (2.0.11, `src/handle_connect.c`) discards the username and password
//! of the CONNECT, never consults the password file, and answers CONNACK 4 (MQTT 5: `0x86`, "bad
//! user name or password") when the client presented no certificate, when the subject has no CN, or
//! when the CN contains a NUL byte. 2.0.16 and later also refuse a CN that is not valid UTF-8 with the
//! same code; so does this broker, whose usernames are UTF-8.
//!
//! The certificate was verified by rustls during the handshake (`require_certificate`); this module
//! only reads its subject, with the `x509-cert` crate. A certificate that crate cannot decode, or
//! (for the subject) an attribute this module cannot print exactly as OpenSSL does, refuses the
//! client the same way rather than inventing a username.

mod subject;

use x509_cert::der::{oid::ObjectIdentifier, Decode};
use x509_cert::Certificate;

/// Which part of the client certificate becomes the username.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertUsername {
    /// `use_identity_as_username`: the first Common Name of the subject.
    CommonName,
    /// `use_subject_as_username`: the whole subject, RFC 2253 style as OpenSSL prints it.
    Subject,
}

/// Where a connection's username comes from, decided once its TLS handshake is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// The CONNECT's username and password, checked against the password file.
    Credentials,
    /// The client certificate: the username it gives, or why it gives none. The CONNECT's username
    /// and password are ignored and the password file is not consulted.
    Certificate(Result<String, CertProblem>),
}

/// Why a client certificate gives no username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertProblem {
    /// The client presented no certificate (the listener does not `require_certificate`).
    NoCertificate,
    /// The certificate could not be decoded.
    Unreadable(String),
    /// The subject has no Common Name.
    NoCommonName,
    /// The Common Name contains a NUL byte.
    NulInCommonName,
    /// The Common Name is not valid UTF-8.
    CommonNameNotUtf8,
    /// An attribute of the subject that this broker cannot print exactly as Mosquitto does.
    SubjectAttribute(String),
}

impl std::fmt::Display for CertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertProblem::NoCertificate => write!(f, "the client presented no certificate"),
            CertProblem::Unreadable(e) => write!(f, "the client certificate cannot be decoded: {e}"),
            CertProblem::NoCommonName => {
                write!(f, "the client certificate's subject has no Common Name (CN)")
            }
            CertProblem::NulInCommonName => {
                write!(f, "the client certificate's Common Name contains a NUL byte")
            }
            CertProblem::CommonNameNotUtf8 => {
                write!(f, "the client certificate's Common Name is not valid UTF-8")
            }
            CertProblem::SubjectAttribute(what) => write!(
                f,
                "the client certificate's subject has {what}, which this broker cannot turn into the username Mosquitto would"
            ),
        }
    }
}

/// The Common Name's object identifier (2.5.4.3).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// The login of a connection on a listener that takes usernames from certificates: `end_entity` is
/// the client's certificate (DER), if it presented one.
pub fn certificate_login(end_entity: Option<&[u8]>, from: CertUsername) -> Login {
    Login::Certificate(match end_entity {
        None => Err(CertProblem::NoCertificate),
        Some(der) => username_from_certificate(der, from),
    })
}

/// The username a DER certificate gives.
pub fn username_from_certificate(der: &[u8], from: CertUsername) -> Result<String, CertProblem> {
    let cert = Certificate::from_der(der).map_err(|e| CertProblem::Unreadable(e.to_string()))?;
    let name = &cert.tbs_certificate.subject;
    match from {
        CertUsername::CommonName => common_name(name),
        CertUsername::Subject => subject::rfc2253(name),
    }
}

/// The first CN of the subject, in certificate order, as its raw bytes (whatever the string type,
/// as Mosquitto copies `ASN1_STRING_get0_data`).
pub(crate) fn common_name(name: &x509_cert::name::Name) -> Result<String, CertProblem> {
    let value = name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == COMMON_NAME)
        .ok_or(CertProblem::NoCommonName)?
        .value
        .value();
    if value.contains(&0) {
        return Err(CertProblem::NulInCommonName);
    }
    String::from_utf8(value.to_vec()).map_err(|_| CertProblem::CommonNameNotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (P-256) with subject `C=ES, O=Uni, CN=user1`, made once with the
    /// openssl command line.
    const USER1: &str = concat!(
        "MIIBqzCCAVGgAwIBAgIUK603r7FUaTz4/uOpbk4YZUzL3AowCgYIKoZIzj0EAwIwKzELMAkGA1UEBhMCRVMxDDAK",
        "BgNVBAoMA1VuaTEOMAwGA1UEAwwFdXNlcjEwHhcNMjYxMTI0MjIyOTA0WhcNMzYxMTIxMjIyOTA0WjArMQswCQYD",
        "VQQGEwJFUzEMMAoGA1UECgwDVW5pMQ4wDAYDVQQDDAV1c2VyMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIkl",
        "ApmLNJhGtEYv81gFvWi4ARcKFZncRaxBH2bC4XymynMUDQCQn1nFLkaUzgH1H2WuR8rfDt5aIOh+Q/403AajUzBR",
        "MB0GA1UdDgQWBBT/FanAKYxTmFxxhqgOHHoLdE1JpTAfBgNVHSMEGDAWgBT/FanAKYxTmFxxhqgOHHoLdE1JpTAP",
        "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIF1Johe3bBTVuweCMFPu+Vxa7567hpokXnPpUwFNqHjA",
        "AiEAlNffc8ghIIxG3BA82qU4WZ2OTtZAqXcAZkDWmbeSXJI=",
    );

    fn der(b64: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64")
    }

    #[test]
    fn the_common_name_and_the_subject_become_usernames() {
        let cert = der(USER1);
        assert_eq!(
            username_from_certificate(&cert, CertUsername::CommonName),
            Ok("user1".to_owned())
        );
        assert_eq!(
            username_from_certificate(&cert, CertUsername::Subject),
            Ok("CN=user1,O=Uni,C=ES".to_owned())
        );
    }

    #[test]
    fn no_certificate_and_garbage_give_no_username() {
        assert_eq!(
            certificate_login(None, CertUsername::CommonName),
            Login::Certificate(Err(CertProblem::NoCertificate))
        );
        assert!(matches!(
            certificate_login(Some(b"not a certificate"), CertUsername::Subject),
            Login::Certificate(Err(CertProblem::Unreadable(_)))
        ));
    }
}
