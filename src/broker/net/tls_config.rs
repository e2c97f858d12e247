//! A TLS listener's rustls configuration, loaded from mosquitto.conf's `certfile`, `keyfile`, `cafile`,
//! `tls_version` and `require_certificate`.
//!
//! The server certificate is served as Mosquitto (OpenSSL) serves it. rustls' own loader
//! (`with_single_cert`) parses the certificate with webpki to check that the key belongs to it, and
//! webpki accepts only X.509 version 3: the certificate that the tutorial's own commands make
//! (`openssl x509 -req` without `-extfile`: version 1, no extensions, the server's IP address as its
//! CN) would stop the broker with "UnsupportedCertVersion", while Mosquitto serves it. So the key is
//! loaded through the crypto provider and matched against the certificate's public key here (with
//! `x509-cert`, which reads every version), and the pair is handed to rustls as it is: a server never
//! has to validate its own certificate to send it.
//!
//! What modern clients may reject about that certificate is logged as a warning at start
//! ([`certificate_warnings`]), with the reason.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::broker::config::{TlsMin, TlsSettings};

/// `subjectAltName` (RFC 5280 §4.2.1.6).
const SUBJECT_ALT_NAME: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.29.17");

/// A listener's rustls configuration and what is worth warning about in it.
pub(super) struct LoadedTls {
    /// The configuration every connection of the listener uses.
    pub config: Arc<rustls::ServerConfig>,
    /// Things clients may reject (see [`certificate_warnings`]), each a sentence.
    pub warnings: Vec<String>,
}

/// Loads the TLS configuration of a listener. Errors name the file and what is wrong with it.
pub(super) fn tls_config(tls: &TlsSettings) -> Result<LoadedTls, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.certfile)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certfile {:?}: {e}", tls.certfile))?;
    let Some(leaf) = certs.first() else {
        return Err(format!("certfile {:?}: no certificate in it", tls.certfile));
    };
    let leaf = Certificate::from_der(leaf).map_err(|e| {
        format!(
            "certfile {:?}: the first certificate is not a valid X.509 certificate: {e}",
            tls.certfile
        )
    })?;
    let key = PrivateKeyDer::from_pem_file(&tls.keyfile)
        .map_err(|e| format!("keyfile {:?}: {e}", tls.keyfile))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("keyfile {:?}: {e}", tls.keyfile))?;
    // Mosquitto refuses to start on a key that does not belong to the certificate (OpenSSL's
    // SSL_CTX_check_private_key); so do we.
    if let Some(public) = signing_key.public_key() {
        let in_certificate = leaf
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("certfile {:?}: {e}", tls.certfile))?;
        if public.as_ref() != in_certificate.as_slice() {
            return Err(format!(
                "keyfile {:?} does not belong to certfile {:?}: the key's public key is not the certificate's",
                tls.keyfile, tls.certfile
            ));
        }
    }
    let mut warnings = certificate_warnings(&leaf);
    if let Some(cafile) = &tls.cafile {
        warnings.extend(same_name_as_issuer_warning(&leaf, &certs[0], cafile));
    }
    let warnings = warnings
        .into_iter()
        .map(|w| format!("certfile {:?}: {w}", tls.certfile))
        .collect();
    let certified = CertifiedKey::new(certs, signing_key);

    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsMin::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMin::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.require_certificate {
        let cafile = tls
            .cafile
            .as_deref()
            .ok_or("require_certificate true needs cafile")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(cafile).map_err(|e| format!("cafile {cafile:?}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("cafile {cafile:?}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("cafile {cafile:?}: {e}"))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("cafile {cafile:?}: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(LoadedTls {
        config: Arc::new(config),
        warnings,
    })
}

/// What clients may reject about a server certificate that Mosquitto serves without a word: each
/// finding with the clients it affects and why.
pub(crate) fn certificate_warnings(cert: &Certificate) -> Vec<String> {
    let mut warnings = Vec::new();
    let tbs = &cert.tbs_certificate;
    if tbs.version == x509_cert::Version::V1 {
        warnings.push(
            "X.509 version 1 (no extensions; what `openssl x509 -req` makes without -extfile): \
             OpenSSL-based clients (mosquitto_pub/_sub, paho-mqtt) accept it, but clients built on \
             rustls/webpki (rumqttc, many Rust and embedded clients) refuse any certificate older than version 3"
                .to_owned(),
        );
    }
    let has_san = tbs
        .extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|e| e.extn_id == SUBJECT_ALT_NAME);
    if !has_san {
        // The CN as the certificate login reads it (`identity::common_name`).
        let cn = crate::broker::identity::common_name(&tbs.subject).ok();
        let what = match &cn {
            Some(cn) if cn.parse::<std::net::IpAddr>().is_ok() => {
                format!("its only name is the IP address {cn:?} in the CN")
            }
            Some(cn) => format!("its only name is the CN {cn:?}"),
            None => "it names no host at all".to_owned(),
        };
        warnings.push(format!(
            "no subjectAltName, {what}: mosquitto_pub/_sub match the CN and accept it, but clients that \
             check host names by current rules (RFC 6125: Python's ssl with check_hostname, Go, browsers, \
             rustls) ignore the CN and refuse it unless verification is turned off (paho's \
             cert_reqs=CERT_NONE, --insecure); a certificate with subjectAltName=IP:... or DNS:... avoids this"
        ));
    }
    warnings
}

/// A certificate whose issuer has the same name as its subject, signed by another key: what the
/// tutorial's commands make when the CA and the server get the same answers (it asks for "the same
/// information", the IP address as both CNs). Chain building then takes the server certificate for a
/// self-signed one, and every client that verifies against `cafile` refuses it, on Mosquitto as here.
fn same_name_as_issuer_warning(
    leaf: &Certificate,
    leaf_der: &CertificateDer<'_>,
    cafile: &str,
) -> Option<String> {
    let tbs = &leaf.tbs_certificate;
    if tbs.issuer != tbs.subject {
        return None;
    }
    // The certificate itself in cafile (pinned, or really self-signed and trusted) verifies.
    let in_cafile = CertificateDer::pem_file_iter(cafile)
        .map(|certs| certs.flatten().any(|c| c.as_ref() == leaf_der.as_ref()))
        .unwrap_or(false);
    if in_cafile {
        return None;
    }
    Some(format!(
        "the certificate's issuer and subject are the same name ({}), but it is not in cafile {cafile:?}: \
         clients that verify it against cafile take it for a self-signed certificate and refuse it \
         (OpenSSL: \"self-signed certificate\"; mosquitto_pub/_sub: \"A TLS error occurred\"), with \
         Mosquitto as with this broker; clients that do not verify (paho's cert_reqs=CERT_NONE, as the \
         tutorial's scripts) connect. Give the CA a subject of its own (another CN) and sign the server \
         certificate again",
        tbs.subject
    ))
}
