//! The reader rejects bad input and says where: file, line and field.

mod common;

use physalia_traces::*;

fn good() -> String {
    common::text(
        &common::header(),
        &[common::event(0, 0, 0, 1, common::timeout())],
    )
}

#[test]
fn reads_a_good_trace() {
    let t = read_str("good.jsonl", &good()).unwrap();
    assert_eq!(t.events.len(), 1);
    assert_eq!(t.events[0].line, 2);
}

#[test]
fn wrong_version_is_rejected_with_the_field() {
    let version = format!("\"version\":{}", physalia_traces::VERSION);
    assert!(
        good().contains(&version),
        "the writer writes the current version"
    );
    for bad in ["0", "4", "\"2\""] {
        let text = good().replacen(&version, &format!("\"version\":{bad}"), 1);
        let err = read_str("vx.jsonl", &text).unwrap_err();
        assert!(
            matches!(err, ReadError::WrongVersion { .. }),
            "{bad}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with("vx.jsonl:1: field `version`"), "{msg}");
        assert!(msg.contains("versions 1 to 3"), "{msg}");
    }
}

#[test]
fn a_version_1_trace_is_still_read() {
    let version = format!("\"version\":{}", physalia_traces::VERSION);
    let text = good().replacen(&version, "\"version\":1", 1);
    let t = read_str("v1.jsonl", &text).unwrap();
    assert_eq!(t.events.len(), 1);
}

#[test]
fn wrong_schema_is_rejected() {
    let text = good().replacen("physalia-trace", "other", 1);
    let err = read_str("s.jsonl", &text).unwrap_err();
    assert!(err.to_string().contains("field `schema`"), "{err}");
}

#[test]
fn unknown_kind_is_an_error_naming_the_field() {
    let text = good().replace("\"timeout\":{", "\"gossip\":{");
    let err = read_str("k.jsonl", &text).unwrap_err().to_string();
    assert!(err.starts_with("k.jsonl:2: field `kind`"), "{err}");
    assert!(err.contains("unknown variant `gossip`"), "{err}");
}

#[test]
fn bad_nested_field_is_named_by_its_path() {
    let text = good().replace("\"commit\":0", "\"commit\":\"zero\"");
    let err = read_str("f.jsonl", &text).unwrap_err().to_string();
    assert!(err.starts_with("f.jsonl:2: field `state.commit`"), "{err}");
}

#[test]
fn unknown_field_is_rejected() {
    let text = good().replace("\"now\":0", "\"now\":0,\"extra\":1");
    let err = read_str("u.jsonl", &text).unwrap_err().to_string();
    assert!(err.starts_with("u.jsonl:2: field `extra`"), "{err}");
    assert!(err.ends_with("(column 48)"), "{err}");
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn truncated_last_line_is_reported() {
    let text = good();
    let cut = &text[..text.len() - 10];
    let err = read_str("cut.jsonl", cut).unwrap_err();
    assert!(matches!(err, ReadError::Truncated { line: 2, .. }), "{err}");
    assert!(err.to_string().starts_with("cut.jsonl:2: truncated line"));
}

#[test]
fn empty_file_and_blank_line_are_rejected() {
    assert!(matches!(read_str("e", ""), Err(ReadError::Empty { .. })));
    let text = good() + "\n" + good().lines().nth(1).unwrap() + "\n";
    let err = read_str("b.jsonl", &text).unwrap_err().to_string();
    assert!(err.starts_with("b.jsonl:3:"), "{err}");
}

#[test]
fn trailing_garbage_on_a_line_is_rejected() {
    let text = good().trim_end().to_owned() + " x\n";
    let err = read_str("g.jsonl", &text).unwrap_err().to_string();
    assert!(err.starts_with("g.jsonl:2: field `.`"), "{err}");
}

#[test]
fn bad_integer_string_is_rejected() {
    let ev = common::event(
        0,
        0,
        0,
        1,
        Kind::Input(Input::Request {
            client: ClientId(1),
            op: 1,
            txn: Txn::Incr {
                key: "k".into(),
                by: 5.into(),
            },
        }),
    );
    let text = common::text(&common::header(), &[ev]).replace("\"5\"", "\"5e3\"");
    let err = read_str("i.jsonl", &text).unwrap_err().to_string();
    assert!(
        err.starts_with("i.jsonl:2: field `kind.request.txn.incr.by`"),
        "{err}"
    );
}

#[test]
fn reads_from_disk_and_names_missing_files() {
    let dir = std::env::temp_dir().join(format!("physalia-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("n0.jsonl");
    std::fs::write(&path, good()).unwrap();
    assert_eq!(read_path(&path).unwrap().events.len(), 1);
    let err = read_path(&dir.join("missing.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.jsonl: cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn transactions_fail_closed_on_unknown_operations_and_fields() {
    let parse = |json: &str| serde_json::from_str::<Txn>(json);
    assert!(parse(r#"{"get":{"key":"k"}}"#).is_ok());
    let err = parse(r#"{"drop_table":{"key":"k"}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `drop_table`"), "{err}");
    let err = parse(r#"{"get":{"key":"k","consistency":"weak"}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `consistency`"), "{err}");
    let err = parse(r#"{"put":{"key":"k","value":{"float":1.5}}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `float`"), "{err}");
}

#[test]
fn a_line_over_the_bound_is_refused_before_it_is_parsed() {
    let long = format!(
        "{}\n{}\n",
        good().lines().next().unwrap(),
        "x".repeat(physalia_traces::MAX_LINE + 1)
    );
    let err = read_str("long.jsonl", &long).unwrap_err();
    assert!(
        matches!(err, ReadError::LineTooLong { line: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("long.jsonl:2: a line of"),
        "{err}"
    );
    let mut w = physalia_traces::TraceWriter::new(Vec::new(), &common::header()).unwrap();
    assert!(w
        .write_raw(&"y".repeat(physalia_traces::MAX_LINE + 1))
        .is_err());
    assert_eq!(w.events(), 0);
}

#[test]
fn a_pipeline_window_outside_its_bound_is_rejected_with_the_field() {
    let text = good();
    let alpha = format!("\"alpha\":{}", common::header().alpha);
    assert!(text.contains(&alpha));
    for bad in [
        "0".to_owned(),
        (MAX_ALPHA + 1).to_string(),
        u64::MAX.to_string(),
    ] {
        let err = read_str(
            "a.jsonl",
            &text.replacen(&alpha, &format!("\"alpha\":{bad}"), 1),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("a.jsonl:1: field `alpha`"), "{bad}: {msg}");
        assert!(msg.contains(&format!("found {bad}")), "{msg}");
    }
}
