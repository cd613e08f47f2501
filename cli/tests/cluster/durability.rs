//! A node never votes with less than it promised (`impl/README.md`, "Amnesia"): on real
//! processes, a second process on a live data directory, a wiped log, a missing newest
//! segment, a missing identity file, another node's directory and a wiped directory are
//! each refused with a message naming what is missing and what to do; `--rejoin` re-enters
//! a node whose state was lost as a new instance that hosts no copy of its old cells.

use super::*;
use physalia_impl::node::wire::Standing;

/// Runs node `i`'s command line (its output to the next run's log file) until it exits or
/// `limit` passes (then it is killed): whether it exited, its exit status if so, and the
/// log.
fn run_until_exit(
    cluster: &mut Cluster,
    i: u32,
    extra: &[&str],
    limit: Duration,
) -> (bool, String) {
    let mut child = cluster.command(i).args(extra).spawn().unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = fs::read_to_string(
        cluster
            .dir
            .join("logs")
            .join(format!("n{i}.run{}.log", cluster.runs[i as usize])),
    )
    .unwrap();
    match status {
        Some(s) => {
            assert!(!s.success(), "node n{i} exited successfully:\n{log}");
            (true, log)
        }
        None => (false, log),
    }
}

/// Every file under `dir` with its bytes, sorted by path.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn write_keys(cluster: &Cluster, history: &History, prefix: &str, n: i64) {
    runtime().block_on(async {
        let mut client = cluster.client(wall_ms());
        for i in 0..n {
            let put = Txn::Put {
                key: key(&format!("{prefix}{i}")),
                value: int(i),
            };
            history.run(&mut client, "c0", put).await.unwrap();
        }
    });
}

fn read_keys(cluster: &Cluster, prefix: &str, n: i64) {
    runtime().block_on(async {
        let mut client = cluster.client(wall_ms() + 1);
        for i in 0..n {
            let got = client.get("c0", &format!("{prefix}{i}")).await.unwrap();
            assert_eq!(got, Some(int(i)), "{prefix}{i}");
        }
    });
}

fn data(cluster: &Cluster, i: u32) -> PathBuf {
    cluster.dir.join("data").join(format!("n{i}"))
}

#[test]
fn a_second_process_on_a_live_data_directory_exits_at_once_and_changes_nothing() {
    let _g = serial();
    let mut cluster = Cluster::new("a_second_process_on_a_live_data_directory", 1, 1);
    let history = History::new(&cluster.dir);
    write_keys(&cluster, &history, "a", 5);
    let before = contents(&data(&cluster, 0));
    let (exited, log) = run_until_exit(&mut cluster, 0, &[], Duration::from_secs(20));
    assert!(exited, "the second process kept running:\n{log}");
    assert!(log.contains("is in use by another process"), "{log}");
    assert!(log.contains("changed nothing"), "{log}");
    assert_eq!(
        contents(&data(&cluster, 0)),
        before,
        "the second process changed the data directory"
    );
    // The first one still serves, and restarts cleanly from its log.
    write_keys(&cluster, &history, "b", 3);
    cluster.kill(0);
    cluster.start(0);
    cluster.wait_ready();
    read_keys(&cluster, "a", 5);
    read_keys(&cluster, "b", 3);
    cluster.check_traces();
}

#[test]
fn a_node_whose_durable_state_is_gone_or_foreign_refuses_to_start() {
    let _g = serial();
    // Small segments, so the log has several and the newest can go missing alone.
    let mut cluster = Cluster::with_args(
        "a_node_whose_durable_state_is_gone_or_foreign",
        3,
        1,
        &["--wal-segment-bytes", "4096"],
    );
    let history = History::new(&cluster.dir);
    // Long keys: 40 writes fill several 4 KiB segments.
    let prefix = "k".repeat(200);
    write_keys(&cluster, &history, &prefix, 40);
    cluster.kill(2);
    let n2 = data(&cluster, 2);
    let saved = cluster.dir.join("n2-saved");
    copy_dir(&n2, &saved);

    // The newest segment deleted: the WAL's marker names it.
    let mut segs: Vec<PathBuf> = fs::read_dir(n2.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 2, "one segment only: {segs:?}");
    fs::remove_file(segs.last().unwrap()).unwrap();
    let (exited, log) = run_until_exit(&mut cluster, 2, &[], Duration::from_secs(20));
    assert!(exited, "started without its newest segment:\n{log}");
    assert!(log.contains("newest segment"), "{log}");
    assert!(log.contains("is missing"), "{log}");

    // The whole log deleted, the identity file left.
    restore(&saved, &n2);
    fs::remove_dir_all(n2.join("wal")).unwrap();
    let (exited, log) = run_until_exit(&mut cluster, 2, &[], Duration::from_secs(20));
    assert!(exited, "started without its log:\n{log}");
    assert!(log.contains("write-ahead log"), "{log}");
    assert!(log.contains("is gone"), "{log}");
    assert!(log.contains("--rejoin"), "the error says what to do: {log}");

    // The identity file deleted while the log holds votes.
    restore(&saved, &n2);
    fs::remove_file(n2.join("identity")).unwrap();
    let (exited, log) = run_until_exit(&mut cluster, 2, &[], Duration::from_secs(20));
    assert!(exited, "started without its identity:\n{log}");
    assert!(log.contains("identity is missing"), "{log}");

    // Another node's directory.
    restore(&saved, &n2);
    let n1 = data(&cluster, 1);
    cluster.kill(1);
    let n1_saved = cluster.dir.join("n1-saved");
    copy_dir(&n1, &n1_saved);
    restore(&n1_saved, &n2);
    let (exited, log) = run_until_exit(&mut cluster, 2, &[], Duration::from_secs(20));
    assert!(exited, "started from another node's directory:\n{log}");
    assert!(log.contains("belongs to node n1"), "{log}");

    // With its own state back, every node starts and every write reads back.
    restore(&saved, &n2);
    cluster.start(1);
    cluster.start(2);
    cluster.wait_ready();
    read_keys(&cluster, &prefix, 40);
    cluster.check_traces();
}

#[test]
fn a_wiped_node_is_refused_by_its_peers_and_rejoins_as_a_new_instance() {
    let _g = serial();
    // Eight nodes: c0's jury is n0..n6, n7 is outside every jury.
    let mut cluster = Cluster::new("a_wiped_node_is_refused_by_its_peers", 8, 1);
    cluster.write_cluster_file();
    let history = History::new(&cluster.dir);
    write_keys(&cluster, &history, "w", 10);
    cluster.kill(2);
    // The whole data directory gone: on its own the node cannot tell; its peers can.
    fs::remove_dir_all(data(&cluster, 2)).unwrap();
    let (exited, log) = run_until_exit(&mut cluster, 2, &[], Duration::from_secs(30));
    assert!(exited, "a wiped node kept running:\n{log}");
    assert!(log.contains("state was lost"), "{log}");
    assert!(log.contains("--rejoin"), "the error says what to do: {log}");
    let stale: u64 = (0..8)
        .filter(|i| *i != 2)
        .map(|i| cluster.metric(i, "physalia_stale_peers_total "))
        .sum();
    assert!(stale >= 1, "no peer counted the stale instance");

    // `--rejoin` re-enters it as a new instance: a member again, hosting no copy of c0.
    let child = cluster.command(2).arg("--rejoin").spawn().unwrap();
    cluster.children[2] = Some(child);
    cluster.wait_ready();
    let status = runtime().block_on(async {
        let mut probe = cluster.client(u64::MAX - 3);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = probe.status(&cluster.addrs[2], 0).await.unwrap();
            if s.standing == Standing::Member || Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(status.standing, Standing::Member, "{status:?}");
    assert_eq!(status.instance.generation, 1, "{status:?}");
    assert!(
        status.inc > 1_000_000,
        "a rejoined incarnation starts at the wall clock's second: {status:?}"
    );
    // It hosts no copy of the initial placement; a leader still sending to its old
    // membership gives it at most a learner's copy, which votes nowhere.
    let cells = runtime().block_on(async {
        let mut probe = cluster.client(u64::MAX - 4);
        probe
            .status(&cluster.addrs[2], u32::MAX)
            .await
            .unwrap()
            .cells
    });
    assert!(
        cells.iter().all(|c| c.since.is_none()),
        "a rejoined node votes with an old membership: {cells:?}"
    );
    // Its old membership moves to n7, which is taught the chosen prefix first.
    let dir = cluster.dir.to_str().unwrap().to_owned();
    let (ok, out, err) = physalia(&["cluster", "replace-node", "--dir", &dir, "--node", "2"]);
    assert!(ok, "cluster replace-node failed:\n{out}{err}");
    assert!(out.contains("c0: jury [n0,n1,n3,n4,n5,n6,n7]"), "{out}");
    let (ok, out, _) = physalia(&["cluster", "replace-node", "--dir", &dir, "--node", "2"]);
    assert!(ok && out.contains("in no cell's jury"), "{out}");
    let (ok, out, _) = physalia(&[
        "cluster",
        "replace-node",
        "--dir",
        &dir,
        "--node",
        "2",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert!(ok && doc["verdict"] == "done", "{doc}");
    // A rejoined instance is refused as the node that joins, with the reason.
    let (ok, out, _) = physalia(&[
        "cluster", "move", "--dir", &dir, "--cell", "c0", "--from", "7", "--to", "2", "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert!(!ok && doc["verdict"] == "refused", "{doc}");
    assert!(
        doc["reason"].as_str().unwrap().contains("new instance"),
        "{doc}"
    );
    // Three members of the new jury go: four of seven remain, and nothing was lost.
    for n in [3, 4, 5] {
        cluster.kill(n);
    }
    read_keys(&cluster, "w", 10);
    write_keys(&cluster, &history, "x", 3);
    // A restart of the rejoined node keeps its new instance.
    cluster.kill(2);
    cluster.start(2);
    cluster.wait_ready();
    read_keys(&cluster, "x", 3);
    cluster.check_traces();
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

fn restore(saved: &Path, dir: &Path) {
    copy_dir(saved, dir);
}
