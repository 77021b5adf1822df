//! Bearer tokens: what a client presents, the roles they carry, and the coordinator's token
//! book, which keeps only their SHA-256 hashes and compares in constant time.
//!
//! A token book is a text file, one token a line:
//!
//! ```text
//! # IDENTITY ROLE SHA256 [expires=YYYY-MM-DD]
//! admin admin 5f4dcc3b5aa765d61d8327deb882cf99...
//! alice commands 9b1c6f0c6c2d... expires=2027-01-01
//! ```

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token lets its holder do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// See its own jobs and batches.
    Read,
    /// Also submit jobs of the built-in apps, and task batches without `exec`.
    Submit,
    /// Also run commands: streaming mappers, reducers and combiners, and `exec` tasks.
    Commands,
    /// Also see and cancel every job.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Read, Role::Submit, Role::Commands, Role::Admin];

    /// Its name, as token books and `weft certs --token` write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Submit => "submit",
            Role::Commands => "commands",
            Role::Admin => "admin",
        }
    }

    /// The role called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A token's secret. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A new random token: 256 bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("weft_{}", hex(&bytes)))
    }

    /// A token as given (a file's content or `WEFT_TOKEN`), surrounding white space removed.
    pub fn new(secret: &str) -> Self {
        Self(secret.trim().to_string())
    }

    /// Reads a token file: one line of printable characters (as `weft certs` writes
    /// `NAME.token`); a file that holds anything else (a certificate given by mistake) is
    /// refused as not a token, never sent.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let token = Self::new(&std::fs::read_to_string(path)?);
        if token.0.is_empty() || !token.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "it holds no token (a token file, like the NAME.token files weft certs writes, is one line of printable characters)",
            ));
        }
        Ok(token)
    }

    /// The secret, to send.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Its hash, as token books keep it.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// A token's SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

impl TokenHash {
    /// `sha256` as a token book writes it: 64 hex digits.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }

    fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who made a request, and with what role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity a token book names (or `local` on an open coordinator).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The token it presented, to end its streams when the token is revoked.
    pub token: Option<TokenHash>,
}

impl Caller {
    /// Whoever reaches a coordinator that asks for no token (loopback, or `--insecure`).
    pub fn open() -> Self {
        Self {
            name: "local".into(),
            role: Role::Admin,
            token: None,
        }
    }

    /// Whether the caller may see and cancel what `owner` owns.
    pub fn owns(&self, owner: &str) -> bool {
        self.role == Role::Admin || self.name == owner
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token came with the request.
    #[error("no token: give one with --token-file FILE, $WEFT_TOKEN_FILE or $WEFT_TOKEN (a NAME.token that weft certs wrote)")]
    Missing,
    /// The token is in no book.
    #[error("the token is not accepted here (unknown or revoked)")]
    Unknown,
    /// The token's time is up.
    #[error("the token expired")]
    Expired,
}

/// Why a token book cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The file cannot be read.
    #[error("cannot read the token book {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not `IDENTITY ROLE SHA256 [expires=YYYY-MM-DD]`.
    #[error("token book line {line}: {reason}")]
    BadLine {
        /// 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    role: Role,
    hash: TokenHash,
    expires: Option<SystemTime>,
}

/// The tokens a coordinator accepts, by hash.
#[derive(Debug, Clone, Default)]
pub struct TokenBook {
    entries: Vec<Entry>,
}

impl TokenBook {
    /// Reads a token book.
    pub fn load(path: &Path) -> Result<Self, BookError> {
        let text = std::fs::read_to_string(path).map_err(|source| BookError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses a token book's text.
    pub fn parse(text: &str) -> Result<Self, BookError> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| BookError::BadLine { line: n + 1, reason };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, role, hash, rest) = match fields.as_slice() {
                [name, role, hash, rest @ ..] if rest.len() <= 1 => (*name, *role, *hash, rest.first()),
                _ => return Err(bad("expected IDENTITY ROLE SHA256 [expires=YYYY-MM-DD]".into())),
            };
            let role = Role::from_name(role)
                .ok_or_else(|| bad(format!("unknown role {role:?}: read, submit, commands or admin")))?;
            let hash = TokenHash::from_hex(hash).ok_or_else(|| bad("the hash must be 64 hex digits".into()))?;
            let expires = match rest {
                None => None,
                Some(field) => {
                    let date = field
                        .strip_prefix("expires=")
                        .ok_or_else(|| bad(format!("unknown field {field:?}")))?;
                    Some(parse_date(date).ok_or_else(|| bad(format!("bad date {date:?}: YYYY-MM-DD")))?)
                }
            };
            entries.push(Entry {
                name: name.to_string(),
                role,
                hash,
                expires,
            });
        }
        Ok(Self { entries })
    }

    /// The line that admits `token` as `name` with `role`.
    pub fn line(name: &str, role: Role, token: &Token) -> String {
        format!("{name} {role} {}", token.hash().to_hex())
    }

    /// Who holds `token`. Every entry is compared, in constant time.
    pub fn authenticate(&self, token: &Token, now: SystemTime) -> Result<Caller, AuthError> {
        if token.secret().is_empty() {
            return Err(AuthError::Missing);
        }
        let hash = token.hash();
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            if bool::from(entry.hash.0.ct_eq(&hash.0)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(AuthError::Unknown)?;
        if entry.expires.is_some_and(|at| now >= at) {
            return Err(AuthError::Expired);
        }
        Ok(Caller {
            name: entry.name.clone(),
            role: entry.role,
            token: Some(hash),
        })
    }

    /// Whether a token with `hash` is in the book and has not expired.
    pub fn admits(&self, hash: TokenHash, now: SystemTime) -> bool {
        self.entries
            .iter()
            .any(|e| e.hash == hash && e.expires.is_none_or(|at| now < at))
    }

    /// How many tokens the book holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Midnight UTC of `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days.checked_mul(86_400)?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_holds_no_token_is_refused_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let (good, pem) = (dir.path().join("alice.token"), dir.path().join("ca.pem"));
        let alice = Token::generate();
        std::fs::write(&good, format!("{}\n", alice.secret())).unwrap();
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        assert_eq!(Token::from_file(&good).unwrap(), alice);
        let refused = Token::from_file(&pem).unwrap_err();
        assert!(refused.to_string().contains("holds no token"), "{refused}");
    }

    #[test]
    fn a_book_admits_its_tokens_with_their_roles_and_nothing_else() {
        let (alice, bob) = (Token::generate(), Token::generate());
        assert_ne!(alice, bob);
        assert!(alice.secret().starts_with("weft_") && alice.secret().len() == 69);
        let text = format!(
            "# tokens\n{}\n\n{} expires=2000-01-01\n",
            TokenBook::line("alice", Role::Commands, &alice),
            TokenBook::line("bob", Role::Read, &bob)
        );
        assert!(!text.contains(alice.secret()), "the book keeps hashes only");
        let book = TokenBook::parse(&text).unwrap();
        let caller = book.authenticate(&alice, SystemTime::now()).unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("alice", Role::Commands));
        assert_eq!(book.authenticate(&bob, SystemTime::now()), Err(AuthError::Expired));
        assert_eq!(
            book.authenticate(&Token::generate(), SystemTime::now()),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            book.authenticate(&Token::new("  "), SystemTime::now()),
            Err(AuthError::Missing)
        );
        assert!(book.admits(alice.hash(), SystemTime::now()) && !book.admits(bob.hash(), SystemTime::now()));
        assert_eq!(format!("{alice:?} {:?}", alice.hash()), "Token(…) TokenHash(…)");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, says) in [
            ("alice admin", "expected"),
            ("alice boss 00", "unknown role"),
            ("alice admin 00", "64 hex"),
            (&format!("a read {} when=now", "0".repeat(64)), "unknown field"),
            (&format!("a read {} expires=2026-13-01", "0".repeat(64)), "bad date"),
        ] {
            let err = TokenBook::parse(&format!("# c\n{text}")).unwrap_err().to_string();
            assert!(err.contains("line 2") && err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn roles_form_a_ladder_and_dates_are_midnight_utc() {
        assert!(Role::Admin.allows(Role::Commands) && Role::Commands.allows(Role::Submit));
        assert!(!Role::Submit.allows(Role::Commands) && !Role::Read.allows(Role::Submit));
        assert_eq!(parse_date("1970-01-02"), Some(UNIX_EPOCH + Duration::from_secs(86_400)));
        assert_eq!(
            parse_date("2026-11-25")
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_795_564_800
        );
        let open = Caller::open();
        assert!(open.owns("anyone"));
    }
}
