//! Small histories with known answers, in each format, both verdicts.

use super::*;
use crate::linearizability::{check, Verdict};

fn verdict(text: &str, format: Format) -> Verdict {
    let hs = parse(text, "t", format, Model::Register).unwrap();
    assert_eq!(hs.len(), 1);
    check(&hs[0].ops, 1_000_000).unwrap()
}

fn linearizable(text: &str, format: Format) -> bool {
    match verdict(text, format) {
        Verdict::Linearizable { .. } => true,
        Verdict::NotLinearizable(_) => false,
        Verdict::Undecided { .. } => panic!("undecided"),
    }
}

/// Porcupine's log lines, tab-separated as in its test data.
fn log(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("INFO  jepsen.util - {}\n", l.replace(' ', "\t")))
        .collect()
}

#[test]
fn porcupine_logs_with_known_answers() {
    let ok = log(&[
        "0 :invoke :write 1",
        "0 :ok :write 1",
        "1 :invoke :read nil",
        "1 :ok :read 1",
    ]);
    assert!(linearizable(&ok, Format::Porcupine));
    let stale = log(&[
        "0 :invoke :write 1",
        "0 :ok :write 1",
        "1 :invoke :read nil",
        "1 :ok :read nil",
    ]);
    assert!(
        !linearizable(&stale, Format::Porcupine),
        "a read after a completed write misses it"
    );
    // Concurrent read and write: either value may be read.
    let concurrent = log(&[
        "0 :invoke :write 1",
        "1 :invoke :read nil",
        "1 :ok :read nil",
        "0 :ok :write 1",
    ]);
    assert!(linearizable(&concurrent, Format::Porcupine));
}

#[test]
fn a_failed_cas_says_the_register_held_another_value() {
    // Porcupine's etcd model: :fail :cas is a compare that failed.
    let held = log(&[
        "0 :invoke :write 1",
        "0 :ok :write 1",
        "1 :invoke :cas [1 2]",
        "1 :fail :cas [1 2]",
    ]);
    assert!(
        !linearizable(&held, Format::Porcupine),
        "the register held 1, so the cas could not fail"
    );
    let other = log(&[
        "0 :invoke :write 3",
        "0 :ok :write 3",
        "1 :invoke :cas [1 2]",
        "1 :fail :cas [1 2]",
    ]);
    assert!(linearizable(&other, Format::Porcupine));
    let swapped = log(&[
        "0 :invoke :write 1",
        "0 :ok :write 1",
        "1 :invoke :cas [1 2]",
        "1 :ok :cas [1 2]",
        "2 :invoke :read nil",
        "2 :ok :read 2",
    ]);
    assert!(linearizable(&swapped, Format::Porcupine));
}

#[test]
fn timeouts_are_unknown_outcomes() {
    // A write that timed out may take effect at any later time, or never.
    let maybe = log(&[
        "0 :invoke :write 2",
        "0 :info :write :timed-out",
        "1 :invoke :read nil",
        "1 :ok :read 2",
    ]);
    assert!(linearizable(&maybe, Format::Porcupine));
    let never_written = log(&[
        "0 :invoke :write 2",
        "0 :info :write :timed-out",
        "1 :invoke :read nil",
        "1 :ok :read 3",
    ]);
    assert!(!linearizable(&never_written, Format::Porcupine));
    // A read that timed out says nothing.
    let read = log(&[
        "0 :invoke :read nil",
        "0 :fail :read :timed-out",
        "1 :invoke :read nil",
        "1 :ok :read nil",
    ]);
    assert!(linearizable(&read, Format::Porcupine));
    // The nemesis and other log lines are skipped.
    let noisy =
        format!("INFO  jepsen.util - :nemesis\t:info\t:start\tnil\nsome other line\n{maybe}");
    assert!(linearizable(&noisy, Format::Porcupine));
}

#[test]
fn jepsen_edn_with_known_answers() {
    let ok = "{:type :invoke, :f :write, :value 1, :process 0, :time 10}\n\
              {:type :ok, :f :write, :value 1, :process 0, :time 20}\n\
              {:type :invoke, :f :cas, :value [1 2], :process 1, :time 30}\n\
              {:type :ok, :f :cas, :value [1 2], :process 1, :time 40}\n\
              {:type :invoke, :f :read, :value nil, :process 2, :time 50}\n\
              {:type :ok, :f :read, :value 2, :process 2, :time 60}\n";
    assert!(linearizable(ok, Format::JepsenEdn));
    let bad = ok.replace(
        ":value 2, :process 2, :time 60",
        ":value 1, :process 2, :time 60",
    );
    assert!(!linearizable(&bad, Format::JepsenEdn));
    // :fail never took effect: a failed cas does not assert anything.
    let failed = "[{:type :invoke, :f :write, :value 1, :process 0}\n\
                   {:type :ok, :f :write, :value 1, :process 0}\n\
                   {:type :invoke, :f :cas, :value [1 2], :process 1}\n\
                   {:type :fail, :f :cas, :value [1 2], :process 1}\n\
                   {:type :invoke, :f :read, :value nil, :process 2}\n\
                   {:type :ok, :f :read, :value 1, :process 2}\n\
                   {:type :info, :f :start, :process :nemesis}]";
    assert!(linearizable(failed, Format::JepsenEdn));
    // Independent keys: each key is its own register.
    let keys = "{:type :invoke, :f :write, :value [:a 1], :process 0}\n\
                {:type :ok, :f :write, :value [:a 1], :process 0}\n\
                {:type :invoke, :f :read, :value [:b nil], :process 1}\n\
                {:type :ok, :f :read, :value [:b nil], :process 1}\n\
                {:type :invoke, :f :cas, :value [:a [1 5]], :process 2}\n\
                {:type :ok, :f :cas, :value [:a [1 5]], :process 2}\n";
    assert!(linearizable(keys, Format::JepsenEdn));
    let crossed = keys.replace(
        "[:b nil], :process 1}\n{:type :invoke, :f :cas",
        "[:b 1], :process 1}\n{:type :invoke, :f :cas",
    );
    let crossed = crossed.replacen(
        "{:type :ok, :f :read, :value [:b nil]",
        "{:type :ok, :f :read, :value [:b 1]",
        1,
    );
    assert!(
        !linearizable(&crossed, Format::JepsenEdn),
        "b was never written"
    );
}

#[test]
fn malformed_histories_name_the_line_and_field() {
    let cases: [(&str, Format, usize, Option<&str>); 8] = [
        ("INFO  jepsen.util - 0\t:invoke\t:write\tx\n", Format::Porcupine, 1, Some("value")),
        ("INFO  jepsen.util - 0\t:ok\t:write\t1\n", Format::Porcupine, 1, Some("process")),
        (
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
            Format::Porcupine,
            2,
            Some("process"),
        ),
        ("{:type :invoke, :f :append, :value 1, :process 0}\n", Format::JepsenEdn, 1, Some(":f")),
        ("{:type :invoke, :f :read\n", Format::JepsenEdn, 1, None),
        ("\n{\"client\": 1, \"op\": 1, \"txn\": 5, \"invoke_ms\": 0}\n", Format::Physalia, 2, Some("txn")),
        ("{\"client\": 1, \"op\": 1, \"txn\": {\"get\": {\"key\": \"k\"}}}\n", Format::Physalia, 1, Some("invoke_ms")),
        ("not json\n", Format::Physalia, 1, None),
    ];
    for (text, format, line, field) in cases {
        let e = parse(text, "h", format, Model::Kv).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (line, field), "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("h:{line}")), "{e}");
    }
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let e = parse(&deep, "h", Format::JepsenEdn, Model::Kv).unwrap_err();
    assert!(e.message.contains("nested deeper"), "{e}");
    let e = parse("", "h", Format::Physalia, Model::Kv).unwrap_err();
    assert!(e.message.contains("no operation"), "{e}");
}

#[test]
fn our_histories_group_by_cell_and_the_register_model_refuses_transactions() {
    let text = r#"{"client": 1, "op": 1, "cell": "c0", "txn": {"put": {"key": "k", "value": {"int": "1"}}}, "invoke_ms": 0, "return_ms": 2, "result": {"known": "put"}}
{"client": 2, "op": 1, "cell": "c1", "txn": {"get": {"key": "k"}}, "invoke_ms": 3, "return_ms": 4, "result": {"known": {"get": {"value": null}}}}
{"client": 1, "op": 2, "cell": "c0", "txn": {"incr": {"key": "k", "by": "1"}}, "invoke_ms": 5, "return_ms": null, "result": "unknown"}
"#;
    let hs = parse(text, "h", Format::Physalia, Model::Kv).unwrap();
    assert_eq!(
        hs.iter()
            .map(|h| (h.cell.as_str(), h.ops.len()))
            .collect::<Vec<_>>(),
        [("c0", 2), ("c1", 1)]
    );
    assert!(hs[0].ops[1].result.is_none() && hs[0].ops[1].ret.is_none());
    let e = parse(text, "h", Format::Physalia, Model::Register).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("txn")), "{e}");
    let dup = format!(
        "{}{}",
        text.lines().next().unwrap(),
        format_args!("\n{}\n", text.lines().next().unwrap())
    );
    let e = parse(&dup, "h", Format::Physalia, Model::Kv).unwrap_err();
    assert!(e.message.contains("listed twice (first on line 1)"), "{e}");
}

#[test]
fn an_initial_state_is_in_place_before_every_operation() {
    let read_5 = log(&["0 :invoke :read nil", "0 :ok :read 5"]);
    let hs = parse(&read_5, "t", Format::Porcupine, Model::Register).unwrap();
    assert!(matches!(
        check(&hs[0].ops, 1000).unwrap(),
        Verdict::NotLinearizable(_)
    ));
    let init = with_initial(&hs[0], &[(Key("x".into()), int_value(5))]);
    assert!(matches!(
        check(&init.ops, 1000).unwrap(),
        Verdict::Linearizable { .. }
    ));
}

#[test]
fn exported_histories_keep_their_verdicts() {
    let histories = [
        log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :cas [1 2]",
            "1 :ok :cas [1 2]",
            "2 :invoke :read nil",
            "2 :ok :read 2",
        ]),
        log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :read nil",
            "1 :ok :read nil",
        ]),
        log(&[
            "0 :invoke :write 2",
            "0 :info :write :timed-out",
            "1 :invoke :read nil",
            "1 :ok :read 2",
            "1 :invoke :write 3",
            "1 :ok :write 3",
        ]),
        log(&[
            "0 :invoke :write 3",
            "0 :ok :write 3",
            "1 :invoke :cas [1 2]",
            "1 :fail :cas [1 2]",
        ]),
        // Not linearizable only through its failed compare.
        log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :cas [1 2]",
            "1 :fail :cas [1 2]",
        ]),
        // One client's operations back to back, at equal stamps once exported.
        log(&[
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "0 :invoke :read nil",
            "0 :ok :read 1",
        ]),
    ];
    for text in &histories {
        let h = &parse(text, "t", Format::Porcupine, Model::Register).unwrap()[0];
        let want = matches!(
            check(&h.ops, 100_000).unwrap(),
            Verdict::Linearizable { .. }
        );
        let failed_compare = h
            .ops
            .iter()
            .any(|o| matches!(o.result, Some(TxnResult::Txn { ok: false, .. })));
        for format in [Format::Porcupine, Format::JepsenEdn, Format::Physalia] {
            let out = match export(h, format) {
                Ok(out) => out,
                Err(e) => {
                    assert!(format == Format::JepsenEdn && failed_compare, "{e}");
                    assert!(e.to_string().contains("failed compare"), "{e}");
                    continue;
                }
            };
            let back = &parse(&out, "e", format, Model::Register)
                .unwrap_or_else(|e| panic!("{e}\n{out}"))[0];
            let got = matches!(
                check(&back.ops, 100_000).unwrap(),
                Verdict::Linearizable { .. }
            );
            assert_eq!(got, want, "{} of\n{text}\n=>\n{out}", format.name());
            assert_eq!(back.ops.len(), h.ops.len(), "{out}");
        }
    }
    // What a format cannot say is an error naming the operation.
    let incr = parse(
        "{\"client\": 1, \"op\": 1, \"txn\": {\"incr\": {\"key\": \"k\", \"by\": \"1\"}}, \"invoke_ms\": 0, \"return_ms\": 1, \"result\": {\"known\": {\"incr\": {\"value\": \"1\"}}}}\n",
        "h",
        Format::Physalia,
        Model::Kv,
    )
    .unwrap();
    let e = export(&incr[0], Format::JepsenEdn).unwrap_err();
    assert_eq!(e.index, 0);
    assert!(e.to_string().contains("register operations"), "{e}");
}

#[test]
fn formats_are_detected_from_the_name_and_the_first_lines() {
    let p = Path::new;
    assert_eq!(Format::detect(p("h.edn"), ""), Format::JepsenEdn);
    assert_eq!(Format::detect(p("h"), "{:type :invoke}"), Format::JepsenEdn);
    assert_eq!(
        Format::detect(p("h.log"), "INFO  jepsen.util - 0\t:invoke"),
        Format::Porcupine
    );
    assert_eq!(
        Format::detect(p("h.jsonl"), "{\"client\": 1}"),
        Format::Physalia
    );
}

#[test]
fn crafted_edn_cannot_nest_past_the_bound() {
    let tags = format!("{}1", "#a ".repeat(200_000));
    let symbol_escapes = format!("{}1", "[:a\\".repeat(100_000));
    let comment_cr = format!(";x\r{}", "[".repeat(100_000));
    for text in [tags, symbol_escapes, comment_cr] {
        let e = parse(&text, "h", Format::JepsenEdn, Model::Kv).unwrap_err();
        assert!(
            e.message.contains("nested deeper") || e.message.contains("tags in a row"),
            "{e}"
        );
    }
    // Tags in ordinary places still read.
    let ok = "{:type :invoke, :f :write, :value 1, :process 0, :error #object[x \"y\"]}\n\
              {:type :ok, :f :write, :value 1, :process 0}\n";
    assert_eq!(
        parse(ok, "h", Format::JepsenEdn, Model::Kv).unwrap()[0]
            .ops
            .len(),
        1
    );
}

#[test]
fn a_client_whose_operations_touch_in_time_exports_as_distinct_processes() {
    let text = concat!(
        r#"{"client": 1, "op": 1, "txn": {"put": {"key": "x", "value": {"int": "1"}}}, "invoke_ms": 0, "return_ms": 5, "result": {"known": "put"}}"#,
        "\n",
        r#"{"client": 1, "op": 2, "txn": {"get": {"key": "x"}}, "invoke_ms": 5, "return_ms": 7, "result": {"known": {"get": {"value": {"int": "1"}}}}}"#,
        "\n"
    );
    let h = &parse(text, "h", Format::Physalia, Model::Register).unwrap()[0];
    for format in [Format::Porcupine, Format::JepsenEdn] {
        let out = export(h, format).unwrap();
        let back =
            &parse(&out, "e", format, Model::Register).unwrap_or_else(|e| panic!("{e}\n{out}"))[0];
        assert_eq!(back.ops.len(), 2, "{out}");
        assert!(
            matches!(
                check(&back.ops, 1000).unwrap(),
                Verdict::Linearizable { .. }
            ),
            "{out}"
        );
    }
}

#[test]
fn jepsen_list_append_transactions() {
    let h = |reads_after: &str| {
        format!(
            "{{:type :invoke, :f :txn, :value [[:append :k 1]], :process 0}}\n\
             {{:type :ok, :f :txn, :value [[:append :k 1]], :process 0}}\n\
             {{:type :invoke, :f :txn, :value [[:r :k nil] [:append :k 2] [:r :k nil]], :process 1}}\n\
             {{:type :ok, :f :txn, :value [[:r :k [1]] [:append :k 2] [:r :k {reads_after}]], :process 1}}\n\
             {{:type :invoke, :f :txn, :value [[:r :k nil]], :process 2}}\n\
             {{:type :ok, :f :txn, :value [[:r :k [1 2]]], :process 2}}\n"
        )
    };
    let verdict = |text: &str| {
        let hs = parse(text, "t", Format::JepsenEdn, Model::Kv).unwrap();
        matches!(
            check(&hs[0].ops, 100_000).unwrap(),
            Verdict::Linearizable { .. }
        )
    };
    assert!(
        verdict(&h("[1 2]")),
        "each read sees every earlier append, its own included"
    );
    assert!(!verdict(&h("[2]")), "a read that lost an append");
    assert!(!verdict(&h("[1 2 2]")), "a read that saw an append twice");
    let stale = h("[1 2]").replace(
        ":value [[:r :k [1 2]]], :process 2",
        ":value [[:r :k [1]]], :process 2",
    );
    assert!(
        !verdict(&stale),
        "a later read that misses a completed append"
    );
}
