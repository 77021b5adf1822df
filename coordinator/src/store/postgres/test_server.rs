//! Real PostgreSQL servers for the tests, in temporary directories (`initdb` and `pg_ctl`
//! from Debian's `postgresql` package, run as the `postgres` user when the tests run as
//! root, since both refuse root), on free loopback ports:
//!
//! - [`TestServer`]: one per test binary, started on first use, with a fresh database for
//!   each test;
//! - [`OwnServer`]: a test's own, to stop and start again (an outage) or to ask for TLS and
//!   a password; stopped and removed when dropped.
//!
//! Without `initdb`, the first test that needs it installs Debian's package (as root, with
//! `apt-get`); where it cannot, the tests that need it fail and say how to get it: they
//! never skip.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The shared server, while the test binary runs.
pub struct TestServer {
    instance: Instance,
}

impl TestServer {
    /// The server of this test binary, started on first use.
    pub fn get() -> &'static TestServer {
        static SERVER: OnceLock<TestServer> = OnceLock::new();
        SERVER.get_or_init(|| {
            let instance = Instance::create(&Options::default());
            instance.start();
            // Stopped, and its directory removed, when the test binary exits (a static is
            // never dropped).
            SHARED.set((instance.bin.clone(), instance.dir.clone())).ok();
            // SAFETY: registers a plain function, run once at exit.
            unsafe { libc::atexit(stop_shared) };
            TestServer { instance }
        })
    }

    /// A fresh, empty database on the server.
    pub async fn database(&self) -> tokio_postgres::Config {
        self.instance.database().await
    }

    /// A fresh, empty database on the server, as `weft coordinator --state` takes it.
    pub async fn database_url(&self) -> String {
        self.instance.database_url().await
    }
}

/// What an [`OwnServer`] asks of its clients.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// TLS, and only TLS, over TCP: a certificate for `localhost` and `127.0.0.1` signed by
    /// a CA of the server's own ([`OwnServer::ca_file`]).
    pub tls: bool,
    /// The password of the user `weft` over TCP (SCRAM); `None`: any client is trusted.
    pub password: Option<String>,
}

/// A server of a test's own; stopped, and its directory removed, when dropped.
pub struct OwnServer {
    instance: Instance,
}

impl OwnServer {
    /// Makes and starts a server.
    pub fn start(options: Options) -> Self {
        let instance = Instance::create(&options);
        instance.start();
        Self { instance }
    }

    /// Stops the server (`pg_ctl stop -m fast`: clients are disconnected).
    pub fn stop(&self) {
        self.instance.stop("fast");
    }

    /// Starts the server again, on the same port, with what it held.
    pub fn restart(&self) {
        self.instance.start();
    }

    /// The CA that signed the server's certificate (with [`Options::tls`]).
    pub fn ca_file(&self) -> PathBuf {
        self.instance.dir.join("certs").join("ca.pem")
    }

    /// A CA that did not sign the server's certificate, for a client that must refuse it.
    pub fn other_ca_file(&self) -> PathBuf {
        let other = self.instance.dir.join("other-certs");
        if !other.join("ca.pem").exists() {
            make_certs(&other);
        }
        other.join("ca.pem")
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.instance.port
    }

    /// A fresh, empty database on the server: its address, without the password.
    pub async fn database(&self) -> tokio_postgres::Config {
        self.instance.database().await
    }

    /// A fresh, empty database, as `weft coordinator --state` takes it (without the
    /// password, and without `sslmode`: a loopback host's default).
    pub async fn database_url(&self) -> String {
        let name = self.instance.create_database().await;
        format!("postgres://weft@127.0.0.1:{}/{name}", self.instance.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.instance.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.instance.dir);
    }
}

/// A server's directory (`data`, `certs`, its socket and log), port and programs.
struct Instance {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// What `pg_ctl start` passes to the server.
    server_options: String,
}

impl Instance {
    /// A new server's directory, initialised; not started.
    fn create(options: &Options) -> Self {
        let bin = bin_dir().or_else(install).unwrap_or_else(|| {
            panic!("PostgreSQL's initdb is not installed and could not be: run `apt-get install postgresql` (Debian's package) as root")
        });
        let dir = tempfile::tempdir().unwrap().keep();
        let data = dir.join("data");
        let mut initdb = vec![
            "-D".to_string(),
            data.to_str().unwrap().to_string(),
            "--username=weft".into(),
            "--no-sync".into(),
            "-E".into(),
            "UTF8".into(),
            "--auth-local=trust".into(),
        ];
        match &options.password {
            Some(password) => {
                let file = dir.join("password");
                std::fs::write(&file, password).unwrap();
                initdb.push(format!("--pwfile={}", file.display()));
                initdb.push("--auth-host=scram-sha-256".into());
            }
            None => initdb.push("--auth-host=trust".into()),
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server_options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            dir.display()
        );
        if options.tls {
            make_certs(&dir.join("certs"));
        }
        give_to_server(&dir);
        let initdb: Vec<&str> = initdb.iter().map(String::as_str).collect();
        run(&bin, "initdb", &initdb);
        if options.tls {
            // The server's key may be read by the server alone.
            for (from, to) in [("coordinator.pem", "server.crt"), ("coordinator.key", "server.key")] {
                std::fs::copy(dir.join("certs").join(from), data.join(to)).unwrap();
            }
            give_to_server(&data.join("server.key"));
            give_to_server(&data.join("server.crt"));
            server_options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
            // Over TCP, TLS only: a client without it finds no entry.
            let method = if options.password.is_some() {
                "scram-sha-256"
            } else {
                "trust"
            };
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n"),
            )
            .unwrap();
        }
        Self {
            bin,
            dir,
            port,
            server_options,
        }
    }

    fn start(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &self.server_options,
                "start",
            ],
        );
    }

    fn stop(&self, mode: &str) {
        stop(&self.bin, &self.dir, mode);
    }

    async fn database(&self) -> tokio_postgres::Config {
        let name = self.create_database().await;
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port).user("weft").dbname(&name);
        config
    }

    async fn database_url(&self) -> String {
        let name = self.create_database().await;
        format!("postgres://weft@127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    /// Creates a database, over the server's Unix socket (trusted, whatever TCP asks for).
    async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "weft_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = tokio_postgres::Config::new();
        admin
            .host_path(&self.dir)
            .port(self.port)
            .user("weft")
            .dbname("postgres");
        let (client, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        name
    }
}

/// A CA and a certificate for `localhost` and `127.0.0.1`, as `weft certs` makes them.
fn make_certs(dir: &Path) {
    weft_auth::certs::make(&weft_auth::certs::CertsRequest {
        dir: dir.to_path_buf(),
        hosts: Vec::new(),
        tokens: Vec::new(),
        days: 1,
        servers: Vec::new(),
    })
    .unwrap();
}

/// The user the server's processes run as: `postgres` under root, else whoever runs the tests.
fn as_user() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root.then_some("postgres")
}

/// Makes `path` the server's user's (recursively), when that is another user.
fn give_to_server(path: &Path) {
    if let Some(user) = as_user() {
        let status = Command::new("chown").arg("-R").arg(user).arg(path).status().unwrap();
        assert!(status.success(), "chown {user} {}", path.display());
    }
}

/// Where Debian puts the server's programs.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Installs Debian's `postgresql` package, as root on a machine with `apt-get` (one test
/// process at a time: the others wait on the lock); where the programs went.
fn install() -> Option<PathBuf> {
    as_user()?;
    eprintln!("installing PostgreSQL from Debian's packages for the tests (apt-get install postgresql)");
    let status = Command::new("flock")
        .args(["/tmp/weft-apt-install.lock", "sh", "-c"])
        .arg("command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }")
        .status()
        .ok()?;
    status.success().then(bin_dir).flatten()
}

fn as_server_user(bin: &Path, program: &str) -> Command {
    match as_user() {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    }
}

fn run(bin: &Path, program: &str, args: &[&str]) {
    let output = as_server_user(bin, program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops the server in `dir` (`pg_ctl stop -m MODE`), whether or not it runs.
fn stop(bin: &Path, dir: &Path, mode: &str) {
    let data = dir.join("data");
    let args = [
        OsStr::new("-D"),
        data.as_os_str(),
        OsStr::new("-m"),
        OsStr::new(mode),
        OsStr::new("stop"),
    ];
    let _ = as_server_user(bin, "pg_ctl").args(args).output();
}

/// The shared server's programs and directory, for [`stop_shared`].
static SHARED: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_shared() {
    let Some((bin, dir)) = SHARED.get() else { return };
    stop(bin, dir, "immediate");
    let _ = std::fs::remove_dir_all(dir);
}
