//! `weft certs`: the certificates and tokens a cluster needs, made in one directory by one
//! command on one trusted machine; the CA's key never has to leave it.
//!
//! The directory holds `ca.pem` (every node and client needs it), `ca.key`, the
//! coordinator's and the workers' certificates and keys (`coordinator.pem`/`.key`,
//! `worker.pem`/`.key`), the coordinator's token book (`tokens`, hashes only) and one
//! `NAME.token` per client identity, and a server certificate (`NAME.pem`/`.key`) for each
//! service the cluster runs beside weft that asks for one (its PostgreSQL). Keys and tokens
//! are `0600`, the directory `0700`. Run
//! again, it keeps what is there (the CA and every key) and adds what is missing: new
//! identities get tokens, new host names need a fresh `coordinator.pem` (remove it first).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::tls::PeerRole;
use crate::tokens::{Role, Token, TokenBook};

/// What `weft certs` makes.
#[derive(Debug, Clone)]
pub struct CertsRequest {
    /// Where.
    pub dir: PathBuf,
    /// Names and addresses clients may reach the coordinator by, besides its fixed name,
    /// for tools that verify the host they dial ([`DEFAULT_HOSTS`] when none are given).
    /// A kept certificate that lacks one of them is reported.
    pub hosts: Vec<String>,
    /// Client identities and their roles; each gets a token.
    pub tokens: Vec<(String, Role)>,
    /// How long the coordinator's and workers' certificates are valid.
    pub days: u32,
    /// Services the cluster runs beside weft (its PostgreSQL), each given a server
    /// certificate of the cluster's CA for its name, as `NAME.pem` and `NAME.key`.
    pub servers: Vec<String>,
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// The directory or a file cannot be written or read.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// An identity name that cannot be a file name or a token book entry.
    #[error("bad identity {0:?}: use letters, digits, '-', '_' and '.'")]
    BadIdentity(String),
    /// A server name that is not a host name, or is one of weft's own files.
    #[error("bad server name {0:?}: give a host name in lower case (letters, digits, '-' and '.'), not ca, coordinator or worker")]
    BadServer(String),
}

/// What a run made, kept or added, file by file, for the command to report.
#[derive(Debug, Default)]
pub struct CertsReport {
    /// Files written now.
    pub made: Vec<PathBuf>,
    /// Files that were there and were kept.
    pub kept: Vec<PathBuf>,
    /// What the user should know of what was kept: a kept `coordinator.pem` that does not
    /// name a host asked for.
    pub warnings: Vec<String>,
}

/// The names a coordinator's new certificate holds when no host is given.
pub const DEFAULT_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];

/// The CA's subject: fixed, so that a kept `ca.key` signs as the same CA.
const CA_NAME: &str = "weft cluster CA";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertsError + '_ {
    move |source| CertsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes (or completes) the directory.
pub fn make(request: &CertsRequest) -> Result<CertsReport, CertsError> {
    for (name, _) in &request.tokens {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !plain {
            return Err(CertsError::BadIdentity(name.clone()));
        }
    }
    for server in &request.servers {
        let host = !server.is_empty()
            && server
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
            && !server.starts_with(['.', '-'])
            && !["ca", "coordinator", "worker", "tokens"].contains(&server.as_str());
        if !host {
            return Err(CertsError::BadServer(server.clone()));
        }
    }
    let dir = &request.dir;
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let mut report = CertsReport::default();

    let ca_params = ca_params();
    let ca_key_path = dir.join("ca.key");
    let ca_key = match fs::read_to_string(&ca_key_path) {
        Ok(pem) => {
            report.kept.push(ca_key_path.clone());
            KeyPair::from_pem(&pem)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate()?;
            write_secret(&ca_key_path, &key.serialize_pem(), &mut report)?;
            key
        }
        Err(e) => return Err(io(&ca_key_path)(e)),
    };
    let ca_cert_path = dir.join("ca.pem");
    if ca_cert_path.exists() {
        report.kept.push(ca_cert_path);
    } else {
        let ca_cert = ca_params.self_signed(&ca_key)?;
        write_public(&ca_cert_path, &ca_cert.pem(), &mut report)?;
    }
    let issuer = Issuer::new(ca_params, ca_key);

    let mut coordinator_names = vec![PeerRole::Coordinator.name().to_string()];
    if request.hosts.is_empty() {
        coordinator_names.extend(DEFAULT_HOSTS.map(String::from));
    }
    coordinator_names.extend(request.hosts.iter().cloned());
    let both = [ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let coordinator = Leaf {
        stem: PeerRole::Coordinator.file_stem(),
        common_name: PeerRole::Coordinator.name(),
        names: coordinator_names,
        // Both serve and dial: the coordinator dials workers to read attempts' logs.
        usages: both.to_vec(),
    };
    coordinator.make(dir, request.days, &issuer, &mut report)?;
    let unnamed = hosts_not_named(&dir.join("coordinator.pem"), &request.hosts)?;
    if !unnamed.is_empty() {
        report.warnings.push(format!(
            "the kept {} does not name {}: a browser or tool that dials by that name refuses it. Remove \
             coordinator.pem and coordinator.key, run again with every --host it should name, and restart \
             the coordinator",
            dir.join("coordinator.pem").display(),
            unnamed.join(", ")
        ));
    }
    let worker = Leaf {
        stem: PeerRole::Worker.file_stem(),
        common_name: PeerRole::Worker.name(),
        names: vec![PeerRole::Worker.name().to_string()],
        // A worker dials the coordinator and its peers, and serves its map output.
        usages: both.to_vec(),
    };
    worker.make(dir, request.days, &issuer, &mut report)?;
    for server in &request.servers {
        let service = Leaf {
            stem: server,
            common_name: server,
            names: vec![server.clone()],
            usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        service.make(dir, request.days, &issuer, &mut report)?;
    }

    let book_path = dir.join("tokens");
    let mut new_lines = String::new();
    for (name, role) in &request.tokens {
        let token_path = dir.join(format!("{name}.token"));
        if token_path.exists() {
            report.kept.push(token_path);
            continue;
        }
        let token = Token::generate();
        write_secret(&token_path, &format!("{}\n", token.secret()), &mut report)?;
        new_lines += &TokenBook::line(name, *role, &token);
        new_lines.push('\n');
    }
    if !book_path.exists() {
        new_lines.insert_str(
            0,
            "# weft token book: IDENTITY ROLE SHA256(TOKEN) [expires=YYYY-MM-DD]\n",
        );
        report.made.push(book_path.clone());
    } else if !new_lines.is_empty() {
        report.made.push(book_path.clone());
    } else {
        report.kept.push(book_path.clone());
    }
    let mut book = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&book_path)
        .map_err(io(&book_path))?;
    book.write_all(new_lines.as_bytes()).map_err(io(&book_path))?;
    Ok(report)
}

/// The `hosts` the certificate at `path` is not valid for.
fn hosts_not_named(path: &Path, hosts: &[String]) -> Result<Vec<String>, CertsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let der = CertificateDer::from_pem_file(path).map_err(|e| CertsError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let unreadable = |e: webpki::Error| CertsError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:?}")),
    };
    let cert = webpki::EndEntityCert::try_from(&der).map_err(unreadable)?;
    Ok(hosts
        .iter()
        .filter(|host| {
            ServerName::try_from(host.as_str())
                .map_or(true, |name| cert.verify_is_valid_for_subject_name(&name).is_err())
        })
        .cloned()
        .collect())
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "weft");
    name
}

/// A certificate to issue: its files' stem, its subject, the names it is valid for and
/// what it may be used for.
struct Leaf<'a> {
    stem: &'a str,
    common_name: &'a str,
    names: Vec<String>,
    usages: Vec<ExtendedKeyUsagePurpose>,
}

impl Leaf<'_> {
    /// Writes `STEM.pem` and `STEM.key`, unless both are there.
    fn make(
        self,
        dir: &Path,
        days: u32,
        issuer: &Issuer<'_, KeyPair>,
        report: &mut CertsReport,
    ) -> Result<(), CertsError> {
        let cert_path = dir.join(format!("{}.pem", self.stem));
        let key_path = dir.join(format!("{}.key", self.stem));
        if cert_path.exists() && key_path.exists() {
            report.kept.extend([cert_path, key_path]);
            return Ok(());
        }
        let mut params = CertificateParams::new(self.names)?;
        params.distinguished_name = name(self.common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = self.usages;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(i64::from(days.max(1)));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, issuer)?;
        write_secret(&key_path, &key.serialize_pem(), report)?;
        write_public(&cert_path, &cert.pem(), report)
    }
}

fn write_secret(path: &Path, text: &str, report: &mut CertsReport) -> Result<(), CertsError> {
    write(path, text, 0o600, report)
}

fn write_public(path: &Path, text: &str, report: &mut CertsReport) -> Result<(), CertsError> {
    write(path, text, 0o644, report)
}

fn write(path: &Path, text: &str, mode: u32, report: &mut CertsReport) -> Result<(), CertsError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    report.made.push(path.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    use super::*;
    use crate::tls::{peer_role, TlsFiles};

    fn request(dir: &Path) -> CertsRequest {
        CertsRequest {
            dir: dir.to_path_buf(),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            tokens: vec![("admin".into(), Role::Admin), ("reader".into(), Role::Read)],
            days: 30,
            servers: Vec::new(),
        }
    }

    #[test]
    fn a_service_beside_weft_gets_a_server_certificate_for_its_own_name() {
        crate::tls::install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let mut with_database = request(dir.path());
        with_database.servers = vec!["postgres".into(), "db.weft.svc".into()];
        let report = make(&with_database).unwrap();
        for stem in ["postgres", "db.weft.svc"] {
            let (pem, key) = (
                dir.path().join(format!("{stem}.pem")),
                dir.path().join(format!("{stem}.key")),
            );
            assert!(report.made.contains(&pem) && report.made.contains(&key), "{report:?}");
            assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(
                hosts_not_named(&pem, &[stem.to_string()]).unwrap(),
                Vec::<String>::new()
            );
            assert_eq!(hosts_not_named(&pem, &["coordinator.weft".into()]).unwrap().len(), 1);
        }
        // Again: kept.
        let again = make(&with_database).unwrap();
        assert!(again.kept.contains(&dir.path().join("postgres.pem")), "{again:?}");
        for bad in ["", "coordinator", "CA", "../x", "a b", ".hidden"] {
            let mut wrong = request(dir.path());
            wrong.servers = vec![bad.into()];
            assert!(matches!(make(&wrong), Err(CertsError::BadServer(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_cluster_s_material_is_made_once_and_completed_after() {
        crate::tls::install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        let report = make(&request(&secrets)).unwrap();
        assert_eq!(report.made.len(), 9, "{report:?}");
        let mode = |name: &str| fs::metadata(secrets.join(name)).unwrap().permissions().mode() & 0o777;
        for secret in [
            "ca.key",
            "coordinator.key",
            "worker.key",
            "admin.token",
            "reader.token",
            "tokens",
        ] {
            assert_eq!(mode(secret), 0o600, "{secret}");
        }
        assert_eq!(mode("ca.pem"), 0o644);
        assert_eq!(fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o700);

        for (stem, role) in [("worker", PeerRole::Worker), ("coordinator", PeerRole::Coordinator)] {
            let pem = fs::read(secrets.join(format!("{stem}.pem"))).unwrap();
            let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem).map(Result::unwrap).collect();
            assert_eq!(peer_role(&certs), Some(role));
            TlsFiles::in_dir(&secrets, Some(role)).load().unwrap();
        }

        let admin = Token::from_file(&secrets.join("admin.token")).unwrap();
        let book = TokenBook::load(&secrets.join("tokens")).unwrap();
        let caller = book.authenticate(&admin, std::time::SystemTime::now()).unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("admin", Role::Admin));

        // Again, with one more identity: everything kept, one token added.
        let ca = fs::read(secrets.join("ca.pem")).unwrap();
        let mut more = request(&secrets);
        more.tokens.push(("alice".into(), Role::Commands));
        let report = make(&more).unwrap();
        assert_eq!(report.made, [secrets.join("alice.token"), secrets.join("tokens")]);
        assert_eq!(fs::read(secrets.join("ca.pem")).unwrap(), ca);
        let book = TokenBook::load(&secrets.join("tokens")).unwrap();
        assert_eq!(book.len(), 3);
        let alice = Token::from_file(&secrets.join("alice.token")).unwrap();
        assert!(book.authenticate(&admin, std::time::SystemTime::now()).is_ok());
        assert_eq!(
            book.authenticate(&alice, std::time::SystemTime::now()).unwrap().role,
            Role::Commands
        );
    }

    #[test]
    fn a_kept_coordinator_certificate_that_lacks_a_host_asked_for_is_reported() {
        crate::tls::install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let mut first = request(dir.path());
        first.hosts = vec!["weft.example.com".into()];
        assert!(make(&first).unwrap().warnings.is_empty());
        // Only more tokens: the certificate is not looked at for names.
        first.hosts.clear();
        assert!(make(&first).unwrap().warnings.is_empty());
        let mut again = request(dir.path());
        again.hosts = vec!["weft.example.com".into(), "10.0.0.5".into(), "localhost".into()];
        let warnings = make(&again).unwrap().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("does not name 10.0.0.5, localhost"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn identities_must_be_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = request(dir.path());
        bad.tokens = vec![("../evil".into(), Role::Admin)];
        assert!(matches!(make(&bad), Err(CertsError::BadIdentity(_))));
    }
}
