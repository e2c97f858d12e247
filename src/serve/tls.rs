//! HTTPS for `mqtt-policy serve` (`--tls-cert FILE --tls-key FILE`): rustls, TLS 1.2 and 1.3, no client
//! certificates (clients authenticate with the `--credential-file` token).
//!
//! The certificate is loaded by rustls' own checks (an X.509 version 3 certificate whose key matches):
//! unlike the MQTT listeners, which serve the tutorial's version-1 certificates as Mosquitto does, the
//! clients of this service are brokers' HTTP clients (EMQX, VerneMQ, RabbitMQ, go-auth), which check
//! the host name against the certificate's subjectAltName.
//!
//! The handshake runs in the connection's own task, on its first read or write ([`Served`]), so that
//! a client that stops mid-handshake holds only its own connection, until the idle timeout closes it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

/// Loads the certificate chain and key (PEM) into an acceptor. Errors name the file and what is
/// wrong with it.
pub fn acceptor(cert_file: &str, key_file: &str) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {cert_file:?}: {e} (expected a PEM certificate chain)"))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {cert_file:?}: no certificate in it (expected a PEM certificate chain)"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("--tls-key {key_file:?}: {e} (expected a PEM private key)"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!("--tls-cert {cert_file:?} with --tls-key {key_file:?}: {e} (expected an X.509 version 3 certificate and its own key)")
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An accepted connection, plain or TLS. A TLS one shakes hands on its first read or write.
pub enum Served<S> {
    /// Plain HTTP.
    Plain(S),
    /// The TLS handshake under way.
    Handshaking(Box<Accept<S>>),
    /// TLS, after the handshake.
    Tls(Box<TlsStream<S>>),
    /// The handshake failed: every further read or write fails.
    Failed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Served<S> {
    /// Wraps `stream`: TLS through `acceptor` when there is one.
    pub fn new(stream: S, acceptor: Option<&TlsAcceptor>) -> Served<S> {
        match acceptor {
            Some(a) => Served::Handshaking(Box::new(a.accept(stream))),
            None => Served::Plain(stream),
        }
    }

    /// Drives the handshake; `Ready(Ok)` once the stream can carry data.
    fn ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Served::Handshaking(accept) = self {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => *self = Served::Tls(Box::new(stream)),
                Poll::Ready(Err(e)) => {
                    *self = Served::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self {
            Served::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

use std::future::Future;

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Served<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.ready(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            Served::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Served::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Served::Handshaking(_) | Served::Failed => {
                unreachable!("ready() settled the handshake")
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Served<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.ready(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            Served::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Served::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Served::Handshaking(_) | Served::Failed => {
                unreachable!("ready() settled the handshake")
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Served::Plain(s) => Pin::new(s).poll_flush(cx),
            Served::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Served::Handshaking(_) | Served::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Served::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Served::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Served::Handshaking(_) | Served::Failed => Poll::Ready(Ok(())),
        }
    }
}
