//! HTTPS and HTTP/2 targets, through reqwest on rustls (the ring provider: no system
//! OpenSSL). The TLS settings (`--cacert`, `--insecure`) are built once into a rustls
//! configuration that every transport shares; each transport then has a reqwest client of its
//! own, so that, like the lean HTTP/1.1 client, a transport is one connection, used only on
//! the runtime (generator thread) that made it.

use super::client::{ClientError, Endpoint, Response, Timeouts, MAX_RESPONSE_BYTES};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How certificates are checked, as the flags say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--cacert FILE`: trust these CA certificates (PEM, or one DER certificate) instead of
    /// the system's.
    pub cacert: Option<PathBuf>,
    /// `--insecure`: accept any certificate (the handshake is still encrypted).
    pub insecure: bool,
    /// `--http2`: HTTP/2 only (ALPN `h2` on https://, prior knowledge on http://).
    pub http2: bool,
}

/// A `--cacert` that cannot be used, or TLS that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--cacert {}: cannot read it: {reason}", path.display())]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("--cacert {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// What every reqwest transport of a run shares.
#[derive(Debug, Clone)]
pub struct Wire {
    /// TLS for https:// targets (None: plain HTTP/2 with prior knowledge).
    tls: Option<rustls::ClientConfig>,
    http2_only: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Wire {
    /// Builds the shared settings for an `https` (or, with `--http2`, plain) target.
    pub fn new(https: bool, opts: &TlsOptions) -> Result<Wire, TlsError> {
        // reqwest falls back to the process-wide provider where a configuration of ours
        // does not apply; there must be one (the first install wins, later ones are no-ops).
        let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
        let tls = https.then(|| client_config(opts)).transpose()?;
        Ok(Wire {
            tls,
            http2_only: opts.http2,
        })
    }
}

fn client_config(opts: &TlsOptions) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let mut config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else if let Some(path) = &opts.cacert {
        builder
            .with_root_certificates(load_roots(path)?)
            .with_no_client_auth()
    } else {
        match rustls_platform_verifier::Verifier::new(Arc::clone(&provider)) {
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
            // No system roots at all: nothing is trusted, and a handshake fails with an
            // unknown issuer, which says to pass --cacert.
            Err(_) => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        }
    };
    config.alpn_protocols = if opts.http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// The CA certificates of a `--cacert` file: PEM (one or more), or a single DER certificate.
fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let bytes = std::fs::read(path).map_err(|reason| TlsError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let invalid = |reason: String| TlsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("not a valid PEM file: {e}")))?
    } else {
        vec![CertificateDer::from(bytes)]
    };
    if certs.is_empty() {
        return Err(invalid(
            "holds no certificate (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)".into(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    Ok(roots)
}

/// `--insecure`: any certificate, any name; the signatures of the handshake are still
/// checked, so the session is encrypted with the key the server showed.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One transport's way to the target through reqwest.
pub struct PooledConn {
    /// Err: the client could not be built; every request fails with that.
    client: Result<reqwest::Client, String>,
    base: String,
    request_timeout: Duration,
}

impl PooledConn {
    pub fn new(wire: &Wire, endpoint: &Endpoint, timeouts: Timeouts) -> PooledConn {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .tcp_nodelay(true)
            // The target is loaded directly, whatever proxy the environment names.
            .no_proxy()
            // A load generator reports what the target answered, redirects included.
            .redirect(reqwest::redirect::Policy::none());
        if wire.http2_only {
            builder = builder.http2_prior_knowledge();
        }
        if let Some(tls) = &wire.tls {
            builder = builder.tls_backend_preconfigured(tls.clone());
        }
        PooledConn {
            client: builder.build().map_err(|e| error_chain(&e)),
            base: endpoint.url.clone(),
            request_timeout: timeouts.request,
        }
    }

    /// Opens the connection (TLS handshake included) now rather than with the first request,
    /// with a `HEAD` of the base URL whose answer does not matter.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        self.send("HEAD", "/", &[], None).await.map(drop)
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| ClientError::Http(e.clone()))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Http(format!("method {method:?}: {e}")))?;
        let mut request = client
            .request(method, format!("{}{path}", self.base))
            .timeout(self.request_timeout);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body.to_vec());
        }
        let timeout = self.request_timeout;
        let mut resp = request
            .send()
            .await
            .map_err(|e| client_error(&e, timeout))?;
        let status = resp.status().as_u16();
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| client_error(&e, timeout))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Protocol("response body too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            body: body.freeze(),
        })
    }
}

/// A reqwest error with every cause, e.g. `error sending request for url (...): client error
/// (Connect): invalid peer certificate: UnknownIssuer`, and what to do about a certificate.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut certificate = false;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // reqwest's own line repeats the URL (which the caller names, and whose ids would
        // make every failure's message distinct); its causes say what happened.
        let url_only =
            text.starts_with("error sending request for url (") && err.source().is_some();
        if !url_only && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        certificate |= is_certificate_error(err);
        next = err.source();
    }
    let mut message = parts.join(": ");
    if certificate {
        message.push_str(
            " (the server's certificate is not trusted: pass --cacert FILE with the CA \
             certificate that signed it, or --insecure to skip the check)",
        );
    }
    message
}

/// Whether `e` is rustls refusing the server's certificate, possibly inside io::Errors
/// (whose `source()` skips the error they wrap, so the chain alone does not show it).
fn is_certificate_error(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

fn client_error(e: &reqwest::Error, request_timeout: Duration) -> ClientError {
    if e.is_connect() {
        ClientError::Unreachable(error_chain(e))
    } else if e.is_timeout() {
        ClientError::Timeout(request_timeout)
    } else {
        ClientError::Http(error_chain(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cacert(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn unusable_cacert_files_are_named_with_the_reason() {
        let (_dir, missing) = cacert(b"");
        let missing = missing.with_file_name("nope.pem");
        // (file contents, a piece of the message)
        let cases: [(&[u8], &str); 4] = [
            (b"", "is not usable"),
            (b"just text", "is not usable"),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                "not a valid PEM file",
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no certificate",
            ),
        ];
        for (bytes, piece) in cases {
            let (_dir, path) = cacert(bytes);
            let opts = TlsOptions {
                cacert: Some(path.clone()),
                ..TlsOptions::default()
            };
            let e = Wire::new(true, &opts).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("--cacert {}", path.display())) && e.contains(piece),
                "{bytes:?}: {e}"
            );
        }
        let opts = TlsOptions {
            cacert: Some(missing.clone()),
            ..TlsOptions::default()
        };
        let e = Wire::new(true, &opts).unwrap_err().to_string();
        assert!(e.contains("cannot read it"), "{e}");
    }

    #[test]
    fn alpn_offers_h2_and_http1_or_h2_alone() {
        let config = |http2| {
            let opts = TlsOptions {
                insecure: true,
                http2,
                ..TlsOptions::default()
            };
            Wire::new(true, &opts).unwrap().tls.unwrap()
        };
        assert_eq!(
            config(false).alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(config(true).alpn_protocols, [b"h2".to_vec()]);
        assert!(Wire::new(false, &TlsOptions::default())
            .unwrap()
            .tls
            .is_none());
    }
}
