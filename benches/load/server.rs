//! The server under test: the release `tofulab` binary in its own process, started the
//! way an operator would start it, plus what the benchmark reads about it from `/proc`
//! (resident memory) and over raw TCP (readiness).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary cargo built next to this benchmark.
pub const BIN: &str = env!("CARGO_BIN_EXE_tofulab");

/// A running server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub base: String,
}

/// A free local port (bound and released; nothing else on the machine races for it in
/// the few milliseconds before the server binds it).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    l.local_addr().expect("local address")
}

impl Server {
    /// Spawns `tofulab serve ARGS --listen ADDR` (logs to `log`), without waiting.
    pub fn spawn(args: &[&str], log: &Path) -> Server {
        let addr = free_addr();
        let log = std::fs::File::create(log).expect("create the server log");
        let child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn tofulab");
        Server {
            child,
            addr,
            base: format!("http://{addr}"),
        }
    }

    /// Spawns the server and waits until `/readyz` answers 200.
    pub async fn start(args: &[&str], log: &Path) -> Server {
        let mut s = Server::spawn(args, log);
        s.wait_ready(Duration::from_secs(120), log).await;
        s
    }

    /// Polls `/readyz` every millisecond until it answers 200; panics with the log if
    /// the process exits or `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration, log: &Path) -> Duration {
        let start = Instant::now();
        loop {
            if readyz(self.addr).await {
                return start.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tofulab exited ({status}) before it was ready:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "tofulab not ready after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) since start or the last `reset_peak`, in KiB.
    pub fn peak_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// Current resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Resets the peak to the current resident size (`5` → `/proc/PID/clear_refs`), so
    /// that each phase reports its own peak.
    pub fn reset_peak(&self) {
        let path = format!("/proc/{}/clear_refs", self.pid());
        if let Err(e) = std::fs::write(&path, "5") {
            eprintln!("warning: cannot reset the peak ({path}: {e}); peaks include earlier phases");
        }
    }

    /// SIGTERM (graceful shutdown: an ephemeral database is removed), then waits.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET /readyz` on a fresh connection: true on a 200 status line.
pub async fn readyz(addr: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.is_ok() && &head[9..12] == b"200"
}

/// A `kB` field of `/proc/PID/status`.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A scratch directory for databases and logs, removed on drop.
pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("tofulab-bench-")
        .tempdir()
        .expect("create a scratch directory");
    let path = dir.path().to_path_buf();
    (dir, path)
}
