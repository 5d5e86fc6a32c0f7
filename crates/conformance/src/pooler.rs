//! A real PgBouncer in transaction mode in front of the test server,
//! listening on a Unix socket in a directory of its own (no port to choose
//! and race for), stopped when dropped.
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::db::postgres_base_url;

const BINARY: &str = "/usr/sbin/pgbouncer";
/// The port in the socket's name (`.s.PGSQL.6432`); nothing listens on it.
const PORT: u16 = 6432;

pub struct PgBouncer {
    child: Child,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Starts PgBouncer with `pool_mode = transaction`, letting `users`
    /// (name, password) in. `None`, after saying why, where it is not
    /// installed, outside CI; in CI that is a failure.
    pub fn start(users: &[(&str, &str)]) -> Option<Self> {
        if !Path::new(BINARY).exists() {
            let why = format!("PgBouncer is not installed ({BINARY}; apt-get install pgbouncer)");
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                "CI is set and the pooler test cannot run: {why}"
            );
            // Past the test harness's capture, so that it shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the pooler test: {why}; with CI=true this is a failure."
            );
            return None;
        }
        let server = reqwest::Url::parse(&postgres_base_url()).expect("MEETPOOL_TEST_DATABASE_URL");
        let dir = tempfile::tempdir().unwrap();
        let userlist: String = users
            .iter()
            .map(|(u, p)| format!("\"{u}\" \"{p}\"\n"))
            .collect();
        std::fs::write(dir.path().join("userlist.txt"), userlist).unwrap();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={server_port}\n\n[pgbouncer]\n\
                 listen_port = {PORT}\nunix_socket_dir = {dir}\n\
                 auth_type = trust\nauth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 8\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {dir}/pgbouncer.log\n",
                host = server.host_str().unwrap_or("127.0.0.1"),
                server_port = server.port().unwrap_or(5432),
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(BINARY);
        // PgBouncer refuses to run as root; the files must be readable by
        // the user it switches to.
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            for f in ["", "userlist.txt", "pgbouncer.ini"] {
                let mode = if f.is_empty() { 0o777 } else { 0o644 };
                std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(mode))
                    .unwrap();
            }
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start PgBouncer");
        let deadline = Instant::now() + Duration::from_secs(10);
        let socket = dir.path().join(format!(".s.PGSQL.{PORT}"));
        while UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not start: {}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, dir })
    }

    /// `url` (a PostgreSQL URL of the test server) through this pooler.
    pub fn url(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).unwrap();
        url.set_port(Some(PORT)).unwrap();
        url.query_pairs_mut()
            .append_pair("host", &self.dir.path().to_string_lossy());
        url.to_string()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
