//! weft's security, in one place: who may reach what, and how they prove who they are.
//!
//! - [`tls`]: TLS material on disk, server and client configurations, and the role a peer's
//!   certificate carries (`coordinator.weft` or `worker.weft`, verified against the cluster's
//!   CA); [`tls::endpoint`] never talks plaintext where TLS was meant.
//! - [`tokens`]: bearer tokens with roles (read, submit, commands, admin), and the
//!   coordinator's [`TokenBook`](tokens::TokenBook) of their hashes.
//! - [`listen`]: the rule that a listener open to the network must be secured, or started
//!   with `--insecure`.
//! - [`paths`]: data roots, the directories jobs may read and write, and opening files
//!   without leaving them.
//! - [`certs`]: `weft certs`, a CA and the certificates and tokens a cluster needs.

pub mod certs;
pub mod flags;
pub mod listen;
pub mod paths;
pub mod tls;
pub mod tokens;
