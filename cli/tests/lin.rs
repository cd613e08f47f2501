//! `physalia lin` on small histories with known answers, in every format: both verdicts,
//! undecided, unusable input, the smallest failing sub-history, export.

use std::path::Path;
use std::process::{Command, Output};

fn physalia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("runs physalia")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn log(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("INFO  jepsen.util - {}\n", l.replace(' ', "\t")))
        .collect()
}

#[test]
fn verdicts_exit_codes_and_the_smallest_failing_sub_history() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.log",
        &log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :read nil",
            "1 :ok :read 1",
        ]),
    );
    let out = physalia(&["lin", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("(porcupine, kv model): 2 operations"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("LINEARIZABLE"), "{}", text(&out));
    // Unrelated operations around one stale read: the reduction keeps only what fails.
    let mut lines = vec![];
    for p in 2..8 {
        lines.push(format!("{p} :invoke :read nil"));
        lines.push(format!("{p} :ok :read nil"));
    }
    lines.extend(
        [
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :read nil",
            "1 :ok :read nil",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let bad = write(dir.path(), "bad.log", &log(&refs));
    let out = physalia(&["lin", &bad]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("NOT LINEARIZABLE"), "{all}");
    assert!(
        all.contains("smallest failing sub-history: 2 of 8 operations (each value read, and each failed compare, is explained by a write in it; removing any one more leaves it linearizable or unexplained)"),
        "{all}"
    );
    assert!(
        all.contains("line 13: ") && all.contains("line 15: "),
        "{all}"
    );
    // JSON: one document, the same verdicts.
    let out = physalia(&["lin", "--json", &good, &bad]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON document");
    assert_eq!(v["schema"], "physalia-lin");
    assert_eq!(v["histories"][0]["verdict"], "linearizable");
    assert_eq!(v["histories"][1]["verdict"], "not linearizable");
    assert_eq!(v["histories"][1]["minimal"].as_array().unwrap().len(), 2);
    assert_eq!(v["histories"][1]["minimal_is_1_minimal"], true);
    // A budget too small for a verdict is undecided, not a verdict.
    let out = physalia(&["lin", "--budget", "1", &good]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("UNDECIDED"), "{}", text(&out));
}

#[test]
fn edn_ours_and_an_initial_state() {
    let dir = tempfile::tempdir().unwrap();
    let edn = write(
        dir.path(),
        "h.edn",
        "{:type :invoke, :f :cas, :value [0 1], :process 0, :time 1}\n\
         {:type :ok, :f :cas, :value [0 1], :process 0, :time 2}\n\
         {:type :invoke, :f :read, :value nil, :process 1, :time 3}\n\
         {:type :info, :f :read, :value nil, :process 1, :time 4}\n",
    );
    // From absent, cas 0 -> 1 cannot succeed; from 0 it can.
    let out = physalia(&["lin", "--model", "register", &edn]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = physalia(&["lin", "--model", "register", "--initial", "x=int:0", &edn]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("(jepsen-edn, register model)"),
        "{}",
        text(&out)
    );
    let ours = write(
        dir.path(),
        "h.jsonl",
        concat!(
            r#"{"client": 1, "op": 1, "cell": "c0", "txn": {"incr": {"key": "n", "by": "2"}}, "invoke_ms": 0, "return_ms": 5, "result": {"known": {"incr": {"value": "2"}}}}"#,
            "\n",
            r#"{"client": 2, "op": 1, "cell": "c0", "txn": {"get": {"key": "n"}}, "invoke_ms": 6, "return_ms": 7, "result": {"known": {"get": {"value": {"int": "3"}}}}}"#,
            "\n"
        ),
    );
    let out = physalia(&["lin", &ours]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cell c0 (physalia, kv model)"),
        "{}",
        text(&out)
    );
    let out = physalia(&["lin", "--model", "register", &ours]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("h.jsonl:1: field `txn`"),
        "{}",
        text(&out)
    );
}

#[test]
fn unusable_histories_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.edn",
        "{:type :invoke, :f :read, :value nil, :process 0}\n{:type :ok, :f :write, :process 0}\n",
    );
    let out = physalia(&["lin", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let all = text(&out);
    assert!(all.contains("bad.edn:2: field `:f`"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    let out = physalia(&["lin", "--json", &bad, "/nonexistent/h.log"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["histories"][0]["verdict"], "unusable");
    assert_eq!(v["histories"][1]["verdict"], "unusable");
    let garbage = write(dir.path(), "garbage", &"\u{1}\u{2}[[[[".repeat(1000));
    let out = physalia(&["lin", &garbage]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("panicked"));
}

#[test]
fn export_to_the_other_formats_keeps_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.log",
        &log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :cas [1 2]",
            "1 :fail :cas [1 2]",
            "2 :invoke :write 3",
            "2 :info :write :timed-out",
        ]),
    );
    for format in ["porcupine", "physalia"] {
        let out = physalia(&["lin", "--export", format, &bad]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let exported = write(
            dir.path(),
            &format!("exported.{format}"),
            &String::from_utf8_lossy(&out.stdout),
        );
        let out = physalia(&["lin", "--format", format, &exported]);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", text(&out));
    }
    // Jepsen's `:fail` says only that the cas did not take effect, not that the register held
    // another value: exporting the failed compare would flip the verdict, so it is refused.
    let out = physalia(&["lin", "--export", "jepsen-edn", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("a failed compare says the register held another value"),
        "{}",
        text(&out)
    );
}

/// `(0.012 s)` and the like, which differ between runs, as `(T s)`.
fn without_times(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('(') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest
            .find(" s)")
            .filter(|&j| j > 0 && rest[..j].chars().all(|c| c.is_ascii_digit() || c == '.'));
        if let Some(j) = digits {
            out.push('T');
            rest = &rest[j..];
        }
    }
    out + rest
}

#[test]
fn the_readme_excerpt_is_what_the_binary_prints() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let cmd = "$ physalia lin docs/histories/stale-read.log\n";
    let start = readme
        .find(cmd)
        .expect("the README shows `physalia lin` on the example")
        + cmd.len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["lin", "docs/histories/stale-read.log"])
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        without_times(shown),
        without_times(&String::from_utf8_lossy(&out.stdout)),
        "regenerate the README's excerpt"
    );
}

#[test]
fn a_foreign_list_longer_than_the_cells_value_bound_is_not_a_violation() {
    // 1 200 appends to one key: "1,2,...,1200," is about 4.9 KB, past the cell's 4 KiB.
    let dir = tempfile::tempdir().unwrap();
    let mut h = String::new();
    let mut list = Vec::new();
    for i in 1..=1200 {
        h += &format!("{{:type :invoke, :f :txn, :value [[:append :k {i}]], :process 0}}\n");
        h += &format!("{{:type :ok, :f :txn, :value [[:append :k {i}]], :process 0}}\n");
        list.push(i.to_string());
    }
    h += "{:type :invoke, :f :txn, :value [[:r :k nil]], :process 1}\n";
    h += &format!(
        "{{:type :ok, :f :txn, :value [[:r :k [{}]]], :process 1}}\n",
        list.join(" ")
    );
    let f = write(dir.path(), "long.edn", &h);
    let out = physalia(&["lin", &f]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
