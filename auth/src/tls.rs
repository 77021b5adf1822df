//! TLS: the material on disk, the server and client configurations built from it, and the
//! role a peer's certificate carries.
//!
//! Every certificate comes from the cluster's CA and names its role in a fixed DNS name: the
//! coordinator's is [`PeerRole::Coordinator`]'s `coordinator.weft`, a worker's
//! `worker.weft`. Peers are verified against that name, never against the address dialled:
//! reducers dial worker addresses no certificate lists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// A peer's role, as its certificate names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The coordinator: serves clients and workers.
    Coordinator,
    /// A worker: joins the coordinator, serves and fetches map output.
    Worker,
}

impl PeerRole {
    /// The fixed DNS name in the role's certificates.
    pub fn name(self) -> &'static str {
        match self {
            PeerRole::Coordinator => "coordinator.weft",
            PeerRole::Worker => "worker.weft",
        }
    }

    /// The stem of the role's files in a TLS directory: `coordinator.pem`, `worker.key`.
    pub fn file_stem(self) -> &'static str {
        match self {
            PeerRole::Coordinator => "coordinator",
            PeerRole::Worker => "worker",
        }
    }
}

/// Why TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("{path} holds no {what} in PEM form")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// The material cannot make the configuration asked for.
    #[error("{0}")]
    Unusable(String),
    /// A URL's scheme and the TLS material disagree.
    #[error("{0}")]
    Scheme(String),
    /// A URL that is not one.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Where TLS material is: the cluster CA's certificate, and this peer's certificate and key
/// (servers and workers; clients need only the CA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// This peer's certificate chain.
    pub cert: Option<PathBuf>,
    /// This peer's private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The files `weft certs` writes into `dir` for `role` (`None`: a client, the CA alone).
    pub fn in_dir(dir: &Path, role: Option<PeerRole>) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: role.map(|r| dir.join(format!("{}.pem", r.file_stem()))),
            key: role.map(|r| dir.join(format!("{}.key", r.file_stem()))),
        }
    }

    /// Reads and checks the files.
    pub fn load(&self) -> Result<TlsMaterial, TlsError> {
        let ca = read_pem(&self.ca)?;
        if CertificateDer::pem_slice_iter(&ca).next().is_none() {
            return Err(not_pem(&self.ca, "certificate"));
        }
        let identity = match (&self.cert, &self.key) {
            (Some(cert_path), Some(key_path)) => {
                let cert = read_pem(cert_path)?;
                if CertificateDer::pem_slice_iter(&cert).next().is_none() {
                    return Err(not_pem(cert_path, "certificate"));
                }
                let key = read_pem(key_path)?;
                if PrivateKeyDer::from_pem_slice(&key).is_err() {
                    return Err(not_pem(key_path, "private key"));
                }
                warn_if_readable_by_others(key_path);
                Some(IdentityPem { cert, key })
            }
            _ => None,
        };
        Ok(TlsMaterial {
            ca: Certificate::from_pem(ca),
            identity,
        })
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

fn not_pem(path: &Path, what: &'static str) -> TlsError {
    TlsError::NotPem {
        path: path.to_path_buf(),
        what,
    }
}

fn warn_if_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(key = %key.display(), "private key readable by others than its owner: chmod 600 it");
        }
    }
}

/// Loaded TLS material.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    ca: Certificate,
    identity: Option<IdentityPem>,
}

/// A certificate chain and its key, as read (checked to be PEM).
#[derive(Clone)]
struct IdentityPem {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for IdentityPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityPem { .. }") // never the key
    }
}

impl IdentityPem {
    fn tonic(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }
}

/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsMaterial {
    /// A server's TLS: its identity, and client certificates from the CA verified when
    /// offered but not required (health checks and token-carrying clients offer none; the
    /// services that need a peer's role check it with [`peer_role`]).
    pub fn server_config(&self) -> ServerTlsConfig {
        let identity = self
            .identity
            .as_ref()
            .expect("a server's TLS material holds its identity")
            .tonic();
        ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(self.ca.clone())
            .client_auth_optional(true)
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A client's TLS towards a peer of `role`, verified against the role's fixed name;
    /// presents this peer's certificate if it has one.
    pub fn client_config(&self, role: PeerRole) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .domain_name(role.name())
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.identity {
            Some(identity) => config.identity(identity.tonic()),
            None => config,
        }
    }

    /// The TLS of an HTTP listener (dashboard, metrics): this peer's identity, HTTP/2 or
    /// HTTP/1.1. With `require_peer`, callers must present a certificate from the cluster's
    /// CA (a worker's `/metrics`: there is no token book to check); without, none is asked
    /// for (the coordinator's callers present tokens).
    pub fn https_server_config(&self, require_peer: bool) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
        let unusable = |reason: String| TlsError::Unusable(reason);
        let identity = self
            .identity
            .as_ref()
            .ok_or_else(|| unusable("an HTTPS listener needs this peer's certificate and key".into()))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&identity.cert)
            .filter_map(Result::ok)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(&identity.key).map_err(|e| unusable(e.to_string()))?;
        let builder = rustls::ServerConfig::builder();
        let builder = if require_peer {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(self.ca.get_ref()).filter_map(Result::ok) {
                roots
                    .add(cert)
                    .map_err(|e| unusable(format!("the CA certificate: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(std::sync::Arc::new(roots))
                .build()
                .map_err(|e| unusable(format!("the CA certificate: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| unusable(format!("the certificate and key do not make a TLS identity: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(std::sync::Arc::new(config))
    }

    /// Whether this material holds a certificate and key.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }
}

/// The endpoint for `url`, a peer of `role`: `https://` speaks TLS with `tls`, and fails
/// without it; `http://` is plaintext, and fails when `tls` is given (never plaintext where
/// TLS was meant).
pub fn endpoint(url: &str, tls: Option<&TlsMaterial>, role: PeerRole) -> Result<Endpoint, TlsError> {
    let bad = |reason: String| TlsError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| bad(e.to_string()))?;
    match (url.split_once("://").map(|(scheme, _)| scheme), tls) {
        (Some("https"), Some(tls)) => endpoint
            .tls_config(tls.client_config(role))
            .map_err(|e| bad(e.to_string())),
        (Some("https"), None) => Err(TlsError::Scheme(format!(
            "{url} is https: give the cluster's CA (--tls-dir DIR, or --tls-ca FILE) to verify it"
        ))),
        (Some("http"), None) => Ok(endpoint),
        (Some("http"), Some(_)) => Err(TlsError::Scheme(format!(
            "{url} is plaintext http but TLS material was given: use https://"
        ))),
        _ => Err(bad("the URL must start with http:// or https://".into())),
    }
}

/// Lazily connected channels to workers by address (`HOST:PORT`), kept for reuse: over TLS
/// with `tls` (this peer presenting its certificate, the worker verified as a worker), else
/// plaintext. `tune` sets the endpoint's timeouts and keepalives.
pub struct WorkerChannels {
    tls: Option<TlsMaterial>,
    tune: fn(Endpoint) -> Endpoint,
    channels: std::sync::Mutex<std::collections::HashMap<String, tonic::transport::Channel>>,
}

impl WorkerChannels {
    /// No channel yet.
    pub fn new(tls: Option<TlsMaterial>, tune: fn(Endpoint) -> Endpoint) -> Self {
        Self {
            tls,
            tune,
            channels: Default::default(),
        }
    }

    /// The channel to the worker at `address`, made on first use.
    pub fn get(&self, address: &str) -> Result<tonic::transport::Channel, TlsError> {
        let mut channels = self.channels.lock().expect("worker channels poisoned");
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoint = endpoint(&format!("{scheme}://{address}"), self.tls.as_ref(), PeerRole::Worker)?;
        let channel = (self.tune)(endpoint).connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    /// Drops the channel to `address` (its worker went away): the next use reconnects.
    pub fn forget(&self, address: &str) {
        self.channels.lock().expect("worker channels poisoned").remove(address);
    }

    /// Whether the channels speak TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// The role a peer's verified certificate carries, if any: the TLS layer has checked the
/// chain to the CA; this reads which fixed name it is for.
pub fn peer_role(certs: &[CertificateDer<'_>]) -> Option<PeerRole> {
    let leaf = webpki::EndEntityCert::try_from(certs.first()?).ok()?;
    [PeerRole::Worker, PeerRole::Coordinator].into_iter().find(|role| {
        let name = ServerName::try_from(role.name()).expect("fixed names are DNS names");
        leaf.verify_is_valid_for_subject_name(&name).is_ok()
    })
}

/// Lets a request through only from a peer whose certificate carries `role`, when the
/// server speaks TLS (without TLS no certificate can be asked for: such a server listens
/// on loopback, or was started `--insecure`). Refusals go to the audit log.
#[derive(Debug, Clone, Copy)]
pub struct RequirePeer {
    /// The role callers must have.
    pub role: PeerRole,
    /// What they ask for, for the audit log and the refusal.
    pub action: &'static str,
    /// Whether the server speaks TLS.
    pub tls: bool,
}

impl Interceptor for RequirePeer {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.tls {
            return Ok(request);
        }
        let role = request.peer_certs().and_then(|certs| peer_role(&certs));
        if role == Some(self.role) {
            return Ok(request);
        }
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::warn!(target: "weft::audit", %peer, ?role, action = self.action, outcome = "unauthenticated", "refused");
        Err(Status::unauthenticated(format!(
            "{} needs a {} certificate from the cluster's CA",
            self.action,
            self.role.file_stem()
        )))
    }
}

/// Installs the one crypto provider weft uses (ring), so that a second one linked in later
/// cannot make rustls refuse to choose. Call before any TLS is set up; calling again is
/// harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
