//! A full restart of a cell with a long log (issue: "a full restart that never recovers"):
//! each cell's log is folded into snapshots, so after SIGKILL of every node a `Promise`
//! carries only the log above the promiser's snapshot — not the cell's whole history — and
//! trace lines stay small; the cell commits again and keeps every acknowledged write.

use super::*;

/// Every trace event line of a restarted incarnation (`n<id>.i<inc>.jsonl`, inc ≥ 1).
fn restarted_lines(traces: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(traces.join("c0")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".i0.") {
            continue;
        }
        out.extend(
            fs::read_to_string(&p)
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_owned),
        );
    }
    out
}

#[test]
fn a_full_restart_of_a_long_cell_promises_only_above_the_snapshot() {
    let _g = serial();
    let every = 64usize;
    let mut cluster = Cluster::with_args(
        "a_full_restart_of_a_long_cell_promises_only_above_the_snapshot",
        3,
        1,
        &["--compact-every", "64"],
    );
    let history = History::new(&cluster.dir);
    let rt = runtime();
    // 8 clients × 150 puts: 1 200 slots, about 19 snapshots' worth.
    let (clients, per) = (8u64, 150i64);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (mut client, history) = (cluster.client(c + 1), history.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    let put = Txn::Put {
                        key: key(&format!("k{c}")),
                        value: int(i),
                    };
                    history.run(&mut client, "c0", put).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.start(i);
    }
    cluster.wait_ready();
    rt.block_on(async {
        let mut client = cluster.client(100);
        for c in 0..clients {
            let get = Txn::Get {
                key: key(&format!("k{c}")),
            };
            let got = history.run(&mut client, "c0", get).await.unwrap();
            assert_eq!(
                got,
                TxnResult::Get {
                    value: Some(int(per - 1))
                },
                "k{c} after the restart"
            );
        }
    });
    // Every Promise after the restart reports at most the log above a snapshot: the slots
    // of one compaction interval plus the pipeline and a batch, not the 1 200 of the cell.
    let lines = restarted_lines(&cluster.traces);
    let mut promises = 0;
    let mut starts_from_snapshot = 0;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"]["start"]["base"].as_u64().unwrap_or(0) > 0 {
            starts_from_snapshot += 1;
        }
        for s in v["sent"].as_array().unwrap() {
            if let Some(accepted) = s["msg"]["promise"]["accepted"].as_array() {
                promises += 1;
                assert!(
                    accepted.len() <= every + 3 + 16,
                    "a Promise of {} entries after the restart: {line:.300}",
                    accepted.len()
                );
            }
        }
        assert!(
            line.len() < 256 << 10,
            "a trace line of {} bytes",
            line.len()
        );
    }
    assert!(promises > 0, "no election after the restart");
    assert_eq!(
        starts_from_snapshot, 3,
        "every node restarts from a snapshot"
    );
    cluster.check_traces();
}
