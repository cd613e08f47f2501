//! `physalia colony` end to end: the built binary places, checks, reports and simulates on
//! the example topologies; exit codes are 0 (rule holds), 1 (a single-domain failure takes
//! a quorum; the cells and domains are named) and 2 (unusable input, never a panic). The
//! HTML report is rendered by headless Chromium (Debian's `chromium` package) and the
//! screenshot kept in `target/artifacts/colony-report.png`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use physalia_colony::placement::{self, Demand};

use physalia_colony::Topology;
use physalia_traces::NodeId;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../colony/examples/topologies")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn physalia(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("run physalia");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "physalia {args:?} panicked: {stderr}"
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn place(topology: &str, cells: &str, extra: &[&str], out: &Path) {
    let out_s = out.display().to_string();
    let mut args = vec![
        "colony",
        "place",
        "--topology",
        topology,
        "--cells",
        cells,
        "--out",
        &out_s,
    ];
    args.extend_from_slice(extra);
    let o = physalia(&args);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

fn check(topology: &str, placement: &Path, extra: &[&str]) -> Output {
    let p = placement.display().to_string();
    let mut args = vec!["colony", "check", "--topology", topology, "--placement", &p];
    args.extend_from_slice(extra);
    physalia(&args)
}

#[test]
fn gen_topology_reproduces_the_checked_in_example() {
    let o = physalia(&["colony", "gen-topology", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(0));
    let want = std::fs::read_to_string(examples().join("gen-1008-seed1.toml")).unwrap();
    assert!(
        stdout(&o) == want,
        "gen-topology --seed 1 differs from the checked-in file"
    );
    let other = physalia(&["colony", "gen-topology", "--seed", "2", "--clients", "10"]);
    assert_ne!(stdout(&other), want);
}

#[test]
fn domain_aware_passes_check_and_the_baselines_fail_it() {
    let dir = tempfile::tempdir().unwrap();
    for (file, cells) in [
        ("small-3az.toml", "30"),
        ("rows-racks-power.toml", "64"),
        ("gen-1008-seed1.toml", "1000"),
    ] {
        let topo = example(file);
        let da = dir.path().join(format!("{file}.da.toml"));
        place(&topo, cells, &["--swaps"], &da);
        let o = check(&topo, &da, &["--pairs"]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stdout(&o));
        assert!(stdout(&o).contains("verdict: PASS"), "{}", stdout(&o));
        assert!(stdout(&o).contains("pairs: "), "{}", stdout(&o));
        for strategy in ["rotation", "random"] {
            let p = dir.path().join(format!("{file}.{strategy}.json"));
            place(&topo, cells, &["--strategy", strategy], &p);
            let o = check(&topo, &p, &[]);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{file} {strategy}: {}",
                stdout(&o)
            );
            let text = stdout(&o);
            assert!(text.contains("verdict: FAIL"), "{text}");
            assert!(text.contains("takes the quorum of"), "{text}");
            // The JSON names the same cells and domains.
            let o = check(&topo, &p, &["--json"]);
            assert_eq!(o.status.code(), Some(1));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["verdict"], "fail");
            let first = &v["violations"][0];
            assert!(first["domain"]["name"].is_string(), "{first}");
            assert!(first["cells"][0].as_str().unwrap().starts_with('c'));
        }
    }
}

#[test]
fn rotation_on_the_small_colony_names_cells_and_azs() {
    let dir = tempfile::tempdir().unwrap();
    let topo = example("small-3az.toml");
    let p = dir.path().join("rot.toml");
    place(&topo, "30", &["--strategy", "rotation"], &p);
    let o = check(&topo, &p, &["--limit", "100"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    // c1 (client vol-b, az2) sits on n1..n7: four members in az1.
    let line = text
        .lines()
        .find(|l| l.contains("az use-az1 takes the quorum"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("c1,") || line.contains("c1 "), "{line}");
    assert!(!line.contains("(c0,"), "c0's client is in az1: {line}");
}

#[test]
fn colony_rotation_is_the_nodes_old_placement() {
    let topo = Topology::load(&examples().join("rows-racks-power.toml")).unwrap();
    // Every cell of 7 (the old placement knows no clients and no smaller juries).
    let d = Demand {
        client: vec![None; 100],
        jury: vec![7; 100],
    };
    let ours = placement::rotation(&topo, &d);
    let ids: Vec<NodeId> = topo.nodes.iter().map(|n| n.id).collect();
    let old = physalia_impl::node::placement(&ids, 100);
    assert_eq!(old.len(), ours.len());
    for ((name, config), members) in old.iter().zip(&ours.members) {
        let mine: Vec<NodeId> = members.iter().map(|&n| topo.nodes[n].id).collect();
        assert_eq!(config.members, mine, "{name}");
    }
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let topo = example("small-3az.toml");
    let bad_topo = dir.path().join("bad.toml");
    std::fs::write(
        &bad_topo,
        "node = [\n { id = \"n0\", region = \"r\", az = \"a\" },\n { id = \"n0\", region = \"r\", az = \"a\" },\n]\n",
    )
    .unwrap();
    let bad_topo_s = bad_topo.display().to_string();
    let o = physalia(&["colony", "place", "--topology", &bad_topo_s, "--cells", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{bad_topo_s}:3: node n0: field `id`")),
        "{}",
        stderr(&o)
    );
    let unknown = dir.path().join("p.toml");
    std::fs::write(
        &unknown,
        "format = \"physalia-colony-placement\"\nversion = 1\n[[cell]]\nid = \"c0\"\njury = [\"n0\", \"n99\"]\n",
    )
    .unwrap();
    let o = check(&topo, &unknown, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("p.toml:5: cell c0: field `jury`: node n99 is not in the topology"),
        "{}",
        stderr(&o)
    );
    // Garbage of every kind: exit 2, never a panic.
    let garbage: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00binary",
        b"[[cell]]\njury = 3\n",
        b"format = \"physalia-colony-placement\"\nversion = 99999999999999999999\n",
        b"{\"format\": [}",
        b"format = \"physalia-colony-placement\"\nversion = 1\n[[cell]]\nid = \"c0\"\njury = [\"n4294967296\"]\n",
    ];
    for (i, g) in garbage.iter().enumerate() {
        for ext in ["toml", "json"] {
            let p = dir.path().join(format!("g{i}.{ext}"));
            std::fs::write(&p, g).unwrap();
            let o = check(&topo, &p, &[]);
            assert_eq!(
                o.status.code(),
                Some(2),
                "garbage {i}.{ext}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(&format!("g{i}.{ext}")),
                "{}",
                stderr(&o)
            );
            let ps = p.display().to_string();
            let o = physalia(&["colony", "report", "--topology", &ps, "--cells", "3"]);
            assert_eq!(o.status.code(), Some(2));
        }
    }
    let o = check(&topo, Path::new("/nonexistent/p.toml"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = physalia(&["colony", "place", "--topology", &topo, "--cells", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = physalia(&[
        "colony",
        "place",
        "--topology",
        &topo,
        "--cells",
        "3",
        "--jury",
        "9",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // Infeasible: a 7-node cell with no client on two AZs must put 4 in one.
    let two = dir.path().join("two.toml");
    let mut text = String::new();
    for i in 0..8 {
        text += &format!(
            "[[node]]\nid = \"n{i}\"\nregion = \"r\"\naz = \"a{}\"\n",
            i % 2
        );
    }
    std::fs::write(&two, text).unwrap();
    let two_s = two.display().to_string();
    let o = physalia(&["colony", "place", "--topology", &two_s, "--cells", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cell c0 (no client, jury of 7)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn report_json_gives_every_strategy_and_the_ratios() {
    let topo = example("rows-racks-power.toml");
    let o = physalia(&[
        "colony",
        "report",
        "--topology",
        &topo,
        "--cells",
        "64",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["rotation", "random", "domain-aware", "domain-aware+swaps"]
    );
    let ratios = &v["ratios_vs_domain_aware_swaps"];
    assert!(ratios["rotation"].as_f64().unwrap() > 10.0, "{ratios}");
    assert!(ratios["random"].as_f64().unwrap() > 10.0, "{ratios}");
    assert!(ratios["domain-aware"].as_f64().unwrap() >= 1.0, "{ratios}");
    let best = &v["strategies"][3];
    assert_eq!(best["violating_cells"], 0);
    assert!(best["swaps"]["moves"].as_u64().unwrap() > 0);
}

#[test]
fn simulate_reports_availability_per_client_and_the_worst_cells() {
    let dir = tempfile::tempdir().unwrap();
    let topo = example("small-3az.toml");
    let p = dir.path().join("rot.toml");
    place(&topo, "30", &["--strategy", "rotation"], &p);
    let ps = p.display().to_string();
    let args = [
        "colony",
        "simulate",
        "--topology",
        &topo,
        "--placement",
        &ps,
        "--hours",
        "200000",
        "--seed",
        "5",
        "--json",
    ];
    let o = physalia(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clients"].as_array().unwrap().len(), 3);
    assert!(v["events"].as_u64().unwrap() > 1000);
    // Rotation gives cells four members in another client's AZ: over 200,000 h some AZ
    // fails and takes them.
    let worst = &v["worst_cells"][0];
    assert!(worst["downtime_hours"].as_f64().unwrap() > 0.0, "{v}");
    // Same seed, same figures.
    let again: serde_json::Value = serde_json::from_slice(&physalia(&args).stdout).unwrap();
    assert_eq!(v["clients"], again["clients"]);
    assert_eq!(v["worst_cells"], again["worst_cells"]);
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

fn browser(args: &[&str]) -> Output {
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
fn html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let topo = example("rows-racks-power.toml");
    let html = dir.path().join("report.html");
    let hs = html.display().to_string();
    let o = physalia(&[
        "colony",
        "report",
        "--topology",
        &topo,
        "--cells",
        "64",
        "--html",
        &hs,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for external in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
    let url = format!("file://{hs}");
    let dom = browser(&["--dump-dom", &url]);
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert!(
        rendered.contains("Strategies side by side"),
        "not rendered; chromium said: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for text in [
        "domain-aware+swaps",
        "Blast radius per domain",
        "<svg",
        "<rect",
        "<polyline",
    ] {
        assert!(
            rendered.contains(text),
            "{text} missing from the rendered page"
        );
    }
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("colony-report.png");
    let _ = std::fs::remove_file(&png);
    let shot = browser(&[
        "--window-size=1280,900",
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
