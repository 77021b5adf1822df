//! Command-line flags that every weft binary shares (`weft` itself, and a worker binary a
//! user builds with their own handlers): where the coordinator is, the TLS material, and
//! durations in seconds.

use std::path::PathBuf;
use std::time::Duration;

use crate::tls::{PeerRole, TlsError, TlsFiles};

/// Where client commands find the coordinator.
#[derive(Debug, clap::Args)]
pub struct CoordinatorUrl {
    /// The coordinator's URL: http://HOST:PORT, or https://HOST:PORT to speak TLS; several,
    /// comma-separated, for a leader and its standbys (the one that leads is used; weft
    /// health checks each).
    #[arg(
        long = "coordinator",
        env = "WEFT_COORDINATOR",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub url: String,
}

/// The cluster's CA, to verify a server's certificate.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// The directory `weft certs` wrote: its ca.pem (and, for servers and workers, their
    /// certificate and key).
    #[arg(long, env = "WEFT_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// The cluster's CA certificate, instead of DIR/ca.pem.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// A server's or worker's TLS material: the CA, and its own certificate and key.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    #[command(flatten)]
    pub ca: CaArgs,
    /// Its certificate, instead of DIR/coordinator.pem or DIR/worker.pem.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key, instead of DIR/coordinator.key or DIR/worker.key.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl CaArgs {
    /// The files, for a peer of `role` (`None`: a client); `None` without any flag.
    pub fn files(&self, role: Option<PeerRole>, cert: Option<PathBuf>, key: Option<PathBuf>) -> Option<TlsFiles> {
        let mut files = match &self.tls_dir {
            Some(dir) => TlsFiles::in_dir(dir, role),
            None => TlsFiles {
                ca: self.tls_ca.clone()?,
                cert: None,
                key: None,
            },
        };
        if let Some(ca) = &self.tls_ca {
            files.ca = ca.clone();
        }
        files.cert = cert.or(files.cert);
        files.key = key.or(files.key);
        Some(files)
    }
}

impl TlsArgs {
    /// The files of a server of `role`; `None` without any flag.
    pub fn files(&self, role: PeerRole) -> Result<Option<TlsFiles>, TlsError> {
        let files = self.ca.files(Some(role), self.tls_cert.clone(), self.tls_key.clone());
        if let Some(files) = &files {
            if files.cert.is_none() || files.key.is_none() {
                return Err(TlsError::Unusable(format!(
                    "TLS needs this {}'s certificate and key: --tls-dir DIR, or --tls-cert FILE and --tls-key FILE",
                    role.file_stem()
                )));
            }
        }
        Ok(files)
    }
}

/// `SECS`: a non-negative number of seconds, fractions allowed (`0.5`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?}: give a number of seconds, 0 or more"))
}

/// Parses a size in bytes: a number, optionally followed by a unit (`B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, `T`/`TB`/`TiB`; all powers of 1024, any case): `64MiB`,
/// `1G`, `500k`, `1000`.
pub fn bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: give bytes, or a number and a unit like 64MiB or 1G"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {text:?} (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Like [`bytes`], where a bare number counts mebibytes (for flags that took MiB before
/// they took units): `64` and `64MiB` alike.
pub fn mebibytes(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(mib) => mib.checked_mul(1 << 20).ok_or_else(|| format!("{text:?} is too large")),
        Err(_) => bytes(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(bytes("1000"), Ok(1000));
        assert_eq!(bytes("64MiB"), Ok(64 << 20));
        assert_eq!(bytes("1G"), Ok(1 << 30));
        assert_eq!(bytes("500k"), Ok(500 << 10));
        assert!(bytes("lots").unwrap_err().contains("not a size"));
        assert!(bytes("3 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(bytes("99999999999T").is_err());
        assert_eq!(mebibytes("64"), Ok(64 << 20));
        assert_eq!(mebibytes("512KiB"), Ok(512 << 10));
    }
}
