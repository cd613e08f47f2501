//! `physalia explore` serves the stateright Explorer, and a real browser (headless Chromium
//! from Debian's `chromium` package) renders the initial state and its next actions. The
//! screenshot is kept in `target/artifacts/explorer.png`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn start(port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["explore", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start physalia explore");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http_get(port, "/.status").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the Explorer did not answer on port {port} within 30 s");
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium not found at {}: install Debian's `chromium` package \
         (apt-get install chromium) or set CHROMIUM",
        path.display()
    );
    path
}

fn browser(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn explorer_api_lists_the_initial_state_and_its_actions() {
    let port = free_port();
    let _server = start(port);
    let states = http_get(port, "/.states/0").expect("GET /.states/0");
    assert!(states.starts_with("HTTP/1.1 200"), "{states}");
    assert!(states.contains("c0 invokes its next operation"), "{states}");
    assert!(states.contains("Timeout(election) at n1"), "{states}");
    let missing = http_get(port, "/.states/0/999").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[test]
fn explorer_renders_in_headless_chromium() {
    let port = free_port();
    let _server = start(port);
    let url = format!("http://127.0.0.1:{port}/#/steps/0");
    let dom = browser(&["--virtual-time-budget=8000", "--dump-dom", &url]);
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("LEADER (1,n0)"),
        "initial state not rendered; chromium said: {}\n{html}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(html.contains("c0 invokes its next operation"), "{html}");
    assert!(html.contains("Timeout(election) at n2"), "{html}");
    assert!(html.contains("agreement"), "properties listed: {html}");

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("explorer.png");
    let _ = std::fs::remove_file(&png);
    let shot = browser(&[
        "--virtual-time-budget=8000",
        "--window-size=1400,900",
        &format!("--screenshot={}", png.display()),
        &url,
    ]);
    let meta = std::fs::metadata(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}); chromium said: {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert!(meta.len() > 10_000, "screenshot suspiciously small");
}
