//! What the CLI tests share: the `meetpool` binary, `meetpool serve` on a
//! port it chooses itself (port 0) and the address it says it listens on,
//! and waiting until it is ready.
// Each test file uses the part it needs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use meetpool_conformance::eventually;

/// The log filter `serve` runs with: warnings, and the line saying where
/// it listens.
pub const LOG: &str = "warn,meetpool::serve=info";

/// How long `serve` may take to listen, and then to be ready.
pub const STARTUP: Duration = Duration::from_secs(30);

/// The `meetpool` binary.
pub fn meetpool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meetpool"))
}

/// A running `meetpool serve`, killed when dropped.
pub struct Server {
    child: Mutex<Child>,
    /// The address it listens on, as it said.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// Starts `cmd`, a `meetpool serve` command line, listening on port 0,
/// and returns once it says where it listens; `Err(stderr)` if it exits
/// first.
pub fn start(cmd: &mut Command) -> Result<Server, String> {
    cmd.env("MEETPOOL_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", LOG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start meetpool serve");
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(String::new()));
    let (lines, said) = mpsc::channel();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                let _ = lines.send(line);
            }
        })
    };
    let until = Instant::now() + STARTUP;
    loop {
        match said.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(addr) = listening_on(&line) {
                    return Ok(Server {
                        child: Mutex::new(child),
                        addr,
                        log,
                        reader: Mutex::new(Some(reader)),
                    });
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                child.wait().unwrap();
                reader.join().unwrap();
                let log = log.lock().unwrap().clone();
                return Err(log);
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().unwrap().clone();
                panic!("meetpool serve did not say where it listens within {STARTUP:?}: {log}");
            }
        }
    }
}

/// The address in serve's "meetpool is listening" line, if `line` is it.
fn listening_on(line: &str) -> Option<SocketAddr> {
    if !line.contains("meetpool is listening") {
        return None;
    }
    // Without the terminal's colours around the field names.
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            plain.push(c);
        }
    }
    let at = plain.find("address=")? + "address=".len();
    plain[at..].split_whitespace().next()?.parse().ok()
}

impl Server {
    /// `http://` and its address.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether it has exited.
    pub fn exited(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_some()
    }

    /// Waits until it answers `GET /readyz` with 200.
    pub async fn ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.base());
        eventually("meetpool serve is ready", STARTUP, || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
    }

    /// `Ok` once it answers `GET /readyz` with 200, `Err(stderr)` if it
    /// exits first.
    pub async fn ready_or_exit(&self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.base());
        eventually("meetpool serve is ready or exits", STARTUP, || async {
            self.exited()
                || http
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if self.exited() {
            return Err(self.stop());
        }
        Ok(())
    }

    /// Kills it (SIGKILL) and returns everything it wrote to stderr.
    pub fn stop(&self) -> String {
        {
            let mut child = self.child.lock().unwrap();
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.lock().unwrap().take() {
            let _ = reader.join();
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
