//! A real cluster laid out by a topology and a domain-aware placement (`cluster up
//! --topology --placement`): every node of one availability zone is SIGKILLed, and every
//! cell whose client is outside that zone keeps serving (the placement keeps a cell near its
//! client: a cell whose client is in the zone may go with it, which is what `colony check`
//! allows).

use super::*;

#[test]
fn on_a_domain_aware_cluster_the_cells_of_clients_outside_a_lost_zone_keep_serving() {
    let _g = serial();
    let dir = artifacts("a_domain_aware_cluster_survives_the_loss_of_a_whole_zone");
    let topo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../colony/examples/topologies/small-3az.toml")
        .display()
        .to_string();
    let placement = dir.join("placement.toml").display().to_string();
    let (ok, out, err) = physalia(&[
        "colony",
        "place",
        "--topology",
        &topo,
        "--cells",
        "3",
        "--strategy",
        "domain-aware",
        "--out",
        &placement,
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = physalia(&[
        "colony",
        "check",
        "--topology",
        &topo,
        "--placement",
        &placement,
    ]);
    assert!(ok, "the placement breaks the rule:\n{out}{err}");
    let d = dir.join("c").display().to_string();
    let (ok, out, err) = physalia(&[
        "cluster",
        "up",
        "--dir",
        &d,
        "--topology",
        &topo,
        "--placement",
        &placement,
        "--trace",
    ]);
    assert!(ok, "{out}{err}");
    let down = Down(d.clone());
    assert!(out.contains("cluster of 15 nodes and 3 cells"), "{out}");
    assert!(
        out.contains("us-east/use-az1"),
        "the nodes are labelled: {out}"
    );
    let file: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("c").join("cluster.json")).unwrap())
            .unwrap();
    let nodes = file["nodes"].as_array().unwrap().clone();
    let key = FrameKey::from_file(&dir.join("c").join("key")).unwrap();
    let seeds = |skip: &[u64]| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| !skip.contains(&n["id"].as_u64().unwrap()))
            .map(|n| n["addr"].as_str().unwrap().to_owned())
            .collect()
    };
    let rt = runtime();
    let placed = fs::read_to_string(&placement).unwrap();
    // The cells whose client is not in use-az1 (vol-a is): those must survive its loss.
    let outside: Vec<String> = placed
        .split("[[cell]]")
        .skip(1)
        .filter(|c| !c.contains("client = \"vol-a\""))
        .map(|c| c.split('"').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(outside.len(), 2, "{placed}");
    let write_all = |seeds: Vec<String>, cells: &[String], tag: &str| {
        rt.block_on(async {
            let opts = ClientOptions {
                deadline: Duration::from_secs(20),
                ..ClientOptions::default()
            };
            let mut client = Client::new(seeds, key.clone(), ClientId(wall_ms()), opts);
            for (c, cell) in cells.iter().enumerate() {
                let c = c as i64;
                client
                    .put(cell, tag, int(c))
                    .await
                    .unwrap_or_else(|e| panic!("{cell} does not take a write ({tag}): {e}"));
                assert_eq!(client.get(cell, tag).await.unwrap(), Some(int(c)));
            }
        })
    };
    let every: Vec<String> = (0..3).map(|c| format!("c{c}")).collect();
    write_all(seeds(&[]), &every, "before");
    // Every node of use-az1 (n0..n4) goes at once.
    let az1: Vec<u64> = nodes
        .iter()
        .filter(|n| n["domains"].as_str().unwrap_or("").contains("use-az1"))
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(az1.len(), 5, "{nodes:?}");
    for n in nodes
        .iter()
        .filter(|n| az1.contains(&n["id"].as_u64().unwrap()))
    {
        let pid = n["pid"].as_u64().unwrap().to_string();
        assert!(Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success());
    }
    write_all(seeds(&az1), &outside, "after");
    // (Nodes down and c0 without a proposer: status says so, and exits 1.)
    let (_, out, _) = physalia(&["cluster", "status", "--dir", &d]);
    assert!(out.contains("n5 [us-east/use-az2/default]: up"), "{out}");
    assert!(out.contains("10/15 nodes up"), "{out}");
    let (ok, out, err) = physalia(&["cluster", "down", "--dir", &d]);
    assert!(ok, "{out}{err}");
    std::mem::forget(down);
    for c in 0..3 {
        let cell = dir.join("c").join("traces").join(format!("c{c}"));
        let (ok, out, err) = physalia(&["conform", cell.to_str().unwrap()]);
        assert!(ok, "c{c} does not conform:\n{out}{err}");
    }
}
