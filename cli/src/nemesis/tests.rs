//! The nemesis's own checks fail on a wrong read-back and pass on a right one.

use super::*;

fn op(client: u64, n: u64, txn: Txn, result: Option<TxnResult>) -> Op {
    Op {
        client,
        op: n,
        cell: "c0".into(),
        txn,
        invoke_ms: n * 10,
        return_ms: result.as_ref().map(|_| n * 10 + 5),
        result,
    }
}

fn int(v: u64) -> Value {
    Value::Int(v.into())
}

fn reads(pairs: &[(&str, Option<Value>)]) -> BTreeMap<String, BTreeMap<Key, Option<Value>>> {
    let m = pairs
        .iter()
        .map(|(k, v)| (Key((*k).into()), v.clone()))
        .collect();
    BTreeMap::from([("c0".to_owned(), m)])
}

fn history() -> Vec<Op> {
    let put = |k: &str, v| Txn::Put {
        key: Key(k.into()),
        value: int(v),
    };
    let incr = Txn::Incr {
        key: Key(workload::COUNTER.into()),
        by: 1.into(),
    };
    vec![
        op(1, 1, put("w1.1", 7), Some(TxnResult::Put)),
        op(1, 2, put("w1.2", 8), None),
        op(
            2,
            1,
            incr.clone(),
            Some(TxnResult::Incr { value: 1.into() }),
        ),
        op(2, 2, incr.clone(), None),
        op(2, 3, incr, Some(TxnResult::Incr { value: 2.into() })),
        op(3, 1, put("r0", 9), Some(TxnResult::Put)),
    ]
}

#[test]
fn acknowledged_writes_must_be_read_back_with_their_value() {
    let ops = history();
    let mut anomalies = Vec::new();
    // The unknown write may be absent; the acknowledged one must be there.
    let ok = reads(&[("w1.1", Some(int(7))), ("w1.2", None)]);
    let w = check_writes(&ops, &ok, &mut anomalies);
    assert!(anomalies.is_empty(), "{anomalies:?}");
    assert_eq!(
        (w["acknowledged"].as_u64(), w["present"].as_u64()),
        (Some(1), Some(1))
    );
    for bad in [
        reads(&[("w1.1", None)]),
        reads(&[("w1.1", Some(int(8)))]),
        reads(&[]),
    ] {
        let mut anomalies = Vec::new();
        check_writes(&ops, &bad, &mut anomalies);
        assert_eq!(anomalies.len(), 1, "{bad:?}");
    }
}

#[test]
fn a_counter_lies_between_its_acknowledged_and_possible_increments() {
    let ops = history();
    for (value, exact) in [
        (Some(int(2)), true),
        (Some(int(3)), true),
        (Some(int(1)), false),
        (Some(int(4)), false),
        (None, false),
    ] {
        let mut anomalies = Vec::new();
        let got = reads(&[(workload::COUNTER, value.clone())]);
        let c = check_counters(&ops, &got, &mut anomalies);
        assert_eq!(c[0]["exact"], exact, "{value:?}: {c}");
        assert_eq!(anomalies.is_empty(), exact, "{value:?}");
    }
}

#[test]
fn the_history_lines_are_what_physalia_lin_reads() {
    let ops = history();
    let text: String = ops.iter().map(|o| format!("{}\n", o.json())).collect();
    let hs = physalia_refinement::histories::parse(
        &text,
        "history.jsonl",
        physalia_refinement::histories::Format::Physalia,
        physalia_refinement::histories::Model::Kv,
    )
    .unwrap();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].ops.len(), ops.len());
    assert_eq!(hs[0].ops.iter().filter(|o| o.result.is_none()).count(), 2);
}

#[test]
fn fault_lists_parse_and_unknown_names_are_refused() {
    assert_eq!(Kind::parse_list("all").unwrap().0, Kind::ALL.to_vec());
    assert_eq!(
        Kind::parse_list("pause,kill,pause").unwrap().0,
        vec![Kind::Kill, Kind::Pause]
    );
    assert!(Kind::parse_list("none").unwrap().0.is_empty());
    assert!(Kind::parse_list("kill,flood")
        .unwrap_err()
        .contains("flood"));
}
