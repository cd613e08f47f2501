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
    start_with(port, &[])
}

/// `physalia explore` with the model options `model`.
fn start_with(port: u16, model: &[&str]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["explore", "--addr", &format!("127.0.0.1:{port}")])
        .args(model)
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

#[test]
fn a_counterexample_of_check_opens_in_the_explorer_step_by_step() {
    let model = ["--mutant", "reply-before-commit"];
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["check", "--json"])
        .args(model)
        .output()
        .expect("runs physalia check");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let p = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["verdict"] == "violated")
        .expect("a violated property")
        .clone();
    let at = p["explorer_path"].as_str().expect("an Explorer path");
    let indices: Vec<&str> = at
        .strip_prefix("#/steps/")
        .expect("#/steps/...")
        .split('/')
        .collect();
    let steps = p["counterexample"]["steps"].as_array().unwrap();
    assert_eq!(indices.len(), steps.len() + 1, "{at}");
    // The Explorer of the same model options takes each step of the path to the action
    // the counterexample names.
    let port = free_port();
    let _server = start_with(port, &model);
    for (k, step) in steps.iter().enumerate() {
        let reply = http_get(port, &format!("/.states/{}", indices[..=k].join("/"))).unwrap();
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
        let body = body.trim();
        // The body may be chunked: take the JSON array it holds.
        let json = &body[body.find('[').unwrap_or(0)..=body.rfind(']').unwrap_or(0)];
        let next: serde_json::Value = serde_json::from_str(json).expect("the next states");
        let index: u64 = indices[k + 1].parse().unwrap();
        let taken = next
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["actionIndex"].as_u64() == Some(index))
            .unwrap_or_else(|| {
                panic!("step {k}: no action {index} at {}", indices[..=k].join("/"))
            });
        assert_eq!(taken["action"], step["action"], "step {}", k + 1);
    }
    // And a real browser opens the URL at the counterexample's last step.
    let url = format!("http://127.0.0.1:{port}/{at}");
    let dom = browser(&["--virtual-time-budget=10000", "--dump-dom", &url]);
    let html = String::from_utf8_lossy(&dom.stdout);
    let last = steps.last().unwrap()["action"].as_str().unwrap();
    assert!(html.contains(last), "last step {last:?} not shown:\n{html}");
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("explorer-counterexample.png");
    let _ = std::fs::remove_file(&png);
    browser(&[
        "--virtual-time-budget=10000",
        "--window-size=1400,900",
        &format!("--screenshot={}", png.display()),
        &url,
    ]);
    assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000));
}
