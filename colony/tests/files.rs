//! Bad topology, clients and placement files give errors that name the file, the line
//! (where the format has lines) and the field, and say what to do.

use std::path::{Path, PathBuf};

use physalia_colony::placement::Placement;
use physalia_colony::Topology;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TOPO: &str = "node = [\n  { id = \"n0\", region = \"r\", az = \"a1\", rack = \"k1\" },\n  { id = \"n1\", region = \"r\", az = \"a2\", rack = \"k2\" },\n  { id = \"n2\", region = \"r\", az = \"a3\", rack = \"k3\" },\n]\n[[client]]\nid = \"x\"\nregion = \"r\"\naz = \"a1\"\n";

fn topo_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.toml", text);
    let e = Topology::load(&p).unwrap_err().to_string();
    e.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn bad_topologies_name_file_line_and_field() {
    let cases: [(&str, &str); 9] = [
        (
            "node = [\n { id = \"n0\", region = \"r\", az = \"a\" },\n { id = \"n0\", region = \"r\", az = \"a\" },\n]\n",
            "DIR/bad.toml:3: node n0: field `id`: duplicate node id (first at line 2)",
        ),
        (
            "node = [\n { id = \"7\", region = \"r\", az = \"a\" },\n]\n",
            "DIR/bad.toml:2: node 7: field `id`: '7' is not a node id",
        ),
        (
            "node = [\n { id = \"n0\", region = \"r\", az = \"a\", power = \"p\" },\n { id = \"n1\", region = \"r\", az = \"a\" },\n]\n",
            "DIR/bad.toml:3: node n1: field `power`: missing",
        ),
        (
            "node = [\n { id = \"n0\", region = \"r\", az = \"a\" },\n { id = \"n1\", region = \"r\", az = \"a\", color = \"red\" },\n]\n",
            "DIR/bad.toml:3: node n1: field `color`: named here but not by the first node",
        ),
        (
            "node = [\n { id = \"n0\", region = \"r\", az = \"a\", row = \"w\" },\n { id = \"n1\", region = \"r\", az = \"b\", row = \"w\" },\n]\n",
            "DIR/bad.toml:3: node n1: field `row`: row 'w' is in az b here but in az a at line 2",
        ),
        (
            &format!("{TOPO}[[client]]\nid = \"y\"\nregion = \"r\"\naz = \"a2\"\nrack = \"k9\"\n"),
            "DIR/bad.toml:14: client y: field `rack`: no node of the topology is in rack 'k9'",
        ),
        (
            &format!("{TOPO}[[client]]\nid = \"y\"\nregion = \"r\"\naz = \"a2\"\nrack = \"k1\"\n"),
            "DIR/bad.toml:14: client y: field `rack`: rack k1 is in az a1, not in the client's az a2",
        ),
        (
            "node = [\n { id = \"n0\", region = \"r\", az = \"a\", zone = \"z\" },\n]\n",
            "unknown field `zone`",
        ),
        ("node = [\n { id = \"n0\", region = \"r\", az = \n]\n", "not a valid topology file: TOML parse error at line 3"),
    ];
    for (text, want) in cases {
        let e = topo_err(text);
        assert!(e.contains(want), "got: {e}\nwant: {want}");
    }
    assert!(topo_err("").contains("no [[node]] entries"));
    let missing = Topology::load(Path::new("/nonexistent/t.toml")).unwrap_err();
    assert!(missing
        .to_string()
        .starts_with("/nonexistent/t.toml: cannot read"));
}

#[test]
fn a_clients_file_is_checked_against_the_topology() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Topology::parse(TOPO, "t.toml").unwrap();
    let ok = write(
        dir.path(),
        "c.toml",
        "[[client]]\nid = \"z\"\nregion = \"r\"\naz = \"a3\"\njury = 3\n",
    );
    t.load_clients(&ok).unwrap();
    assert_eq!(t.clients.len(), 1);
    assert_eq!(t.clients[0].jury, Some(3));
    let bad = write(
        dir.path(),
        "b.toml",
        "[[client]]\nid = \"z\"\nregion = \"r\"\naz = \"nowhere\"\n",
    );
    let e = t.load_clients(&bad).unwrap_err().to_string();
    assert!(e.contains("b.toml:4: client z: field `az`"), "{e}");
    let nodes = write(dir.path(), "n.toml", TOPO);
    assert!(t
        .load_clients(&nodes)
        .unwrap_err()
        .to_string()
        .contains("[[client]] entries only"));
}

fn placement_err(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let t = Topology::parse(TOPO, "t.toml").unwrap();
    let p = write(dir.path(), name, text);
    let e = Placement::load(&p, &t).unwrap_err().to_string();
    e.replace(&dir.path().display().to_string(), "DIR")
}

const HEAD: &str = "format = \"physalia-colony-placement\"\nversion = 1\n";

#[test]
fn bad_placements_name_file_line_cell_and_field() {
    let cases: [(String, &str); 8] = [
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\njury = [\"n0\", \"n9\"]\n"),
            "DIR/p.toml:5: cell c0: field `jury`: node n9 is not in the topology t.toml",
        ),
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\njury = [\"n0\", \"n0\"]\n"),
            "DIR/p.toml:5: cell c0: field `jury`: node n0 appears twice",
        ),
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\njury = []\n"),
            "DIR/p.toml:5: cell c0: field `jury`: 0 members; a jury has 1 to 7",
        ),
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\njury = [\"n0\",\"n1\",\"n2\",\"n3\",\"n4\",\"n5\",\"n6\",\"n7\"]\n"),
            "field `jury`: 8 members",
        ),
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\nclient = \"ghost\"\njury = [\"n0\"]\n"),
            "DIR/p.toml:5: cell c0: field `client`: client 'ghost' is not in the topology",
        ),
        (
            format!("{HEAD}[[cell]]\nid = \"c0\"\njury = [\"n0\"]\n[[cell]]\nid = \"c0\"\njury = [\"n1\"]\n"),
            "DIR/p.toml:7: cell c0: field `id`: duplicate cell id",
        ),
        (
            "format = \"something-else\"\nversion = 1\n".to_string(),
            "field `format` is 'something-else'",
        ),
        (
            "format = \"physalia-colony-placement\"\nversion = 2\n".to_string(),
            "field `version` is 2",
        ),
    ];
    for (text, want) in &cases {
        let e = placement_err("p.toml", text);
        assert!(e.contains(want), "got: {e}\nwant: {want}");
    }
    let e = placement_err(
        "p.json",
        "{\"format\":\"physalia-colony-placement\",\"version\":1,\"strategy\":\"x\",\"cell\":[{\"id\":\"c4\",\"jury\":[\"n0\",\"q\"]}]}",
    );
    assert!(
        e.contains("DIR/p.json: cell c4: field `jury`: 'q' is not a node id"),
        "{e}"
    );
    let e = placement_err("p.json", "{\"format\": ");
    assert!(
        e.contains("DIR/p.json: not a valid placement file") && e.contains("line 1"),
        "{e}"
    );
}
