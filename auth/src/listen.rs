//! Who can reach a listener: one on an address other than loopback is open to the network,
//! and must be secured (TLS, and tokens where clients call) unless the operator passes
//! `--insecure`, as Redis's protected mode asks. A loopback listener is open as before.

use std::net::{IpAddr, SocketAddr};

/// Whether only this machine can reach `ip`.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// A listener that would be open to the network, unsecured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to serve {what} on {address} without {missing}: anyone who reaches it could {exposes}. \
     Give {remedy} (`weft certs` makes them), listen on 127.0.0.1, or pass --insecure to accept that"
)]
pub struct Exposed {
    /// What the listener serves.
    pub what: &'static str,
    /// Where.
    pub address: SocketAddr,
    /// What is missing: "TLS", "TLS and tokens", "tokens".
    pub missing: String,
    /// What an attacker could do.
    pub exposes: &'static str,
    /// The flags that would secure it.
    pub remedy: &'static str,
}

/// What a listener serves, and what securing it takes.
#[derive(Debug, Clone, Copy)]
pub struct Listener {
    /// "the coordinator", "the shuffle service".
    pub what: &'static str,
    /// What anyone who reached it unsecured could do.
    pub exposes: &'static str,
    /// The flags that secure it.
    pub remedy: &'static str,
    /// Whether clients call it with tokens (the coordinator) or only peers with
    /// certificates (a worker).
    pub takes_tokens: bool,
}

impl Listener {
    /// Allows serving on `address` if it is loopback, if it is secured, or if the operator
    /// said `--insecure` (then warns, once, saying what is exposed).
    pub fn check(&self, address: SocketAddr, tls: bool, tokens: bool, insecure: bool) -> Result<(), Exposed> {
        let missing: Vec<&str> = [
            (!tls).then_some("TLS"),
            (self.takes_tokens && !tokens).then_some("tokens"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if missing.is_empty() || is_loopback(address.ip()) {
            return Ok(());
        }
        let exposed = Exposed {
            what: self.what,
            address,
            missing: missing.join(" and "),
            exposes: self.exposes,
            remedy: self.remedy,
        };
        if insecure {
            tracing::warn!(
                "--insecure: serving {} on {address} without {}: anyone who reaches it can {}",
                self.what,
                exposed.missing,
                self.exposes
            );
            return Ok(());
        }
        Err(exposed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COORDINATOR: Listener = Listener {
        what: "the coordinator",
        exposes: "run commands on every worker",
        remedy: "--tls-dir DIR",
        takes_tokens: true,
    };

    #[test]
    fn only_loopback_or_secured_or_insecure_listeners_serve() {
        let any: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        for local in ["127.0.0.1:7070", "127.9.9.9:1", "[::1]:7070", "[::ffff:127.0.0.1]:1"] {
            assert_eq!(
                COORDINATOR.check(local.parse().unwrap(), false, false, false),
                Ok(()),
                "{local}"
            );
        }
        let refused = COORDINATOR.check(any, true, false, false).unwrap_err();
        assert_eq!(refused.missing, "tokens");
        let message = COORDINATOR.check(any, false, false, false).unwrap_err().to_string();
        assert!(
            message.contains("without TLS and tokens") && message.contains("--insecure"),
            "{message}"
        );
        assert_eq!(COORDINATOR.check(any, true, true, false), Ok(()));
        assert_eq!(COORDINATOR.check(any, false, false, true), Ok(()));
        let worker = Listener {
            takes_tokens: false,
            ..COORDINATOR
        };
        assert_eq!(worker.check("[::]:7071".parse().unwrap(), true, false, false), Ok(()));
        assert!(worker
            .check("10.1.2.3:7071".parse().unwrap(), false, false, false)
            .is_err());
    }
}
