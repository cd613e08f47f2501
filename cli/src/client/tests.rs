//! The client command's parsing, display and exit codes.

use super::*;

#[test]
fn values_parse_by_prefix_then_by_shape() {
    assert_eq!(parse_value("true").unwrap(), Value::Bool(true));
    assert_eq!(parse_value("bool:false").unwrap(), Value::Bool(false));
    assert_eq!(parse_value("-12").unwrap(), Value::Int((-12).into()));
    assert_eq!(parse_value("int:7").unwrap(), Value::Int(7.into()));
    assert_eq!(parse_value("hex:00ff").unwrap(), Value::Bytes(vec![0, 255]));
    assert_eq!(parse_value("abc").unwrap(), Value::Bytes(b"abc".to_vec()));
    assert_eq!(
        parse_value("text:42").unwrap(),
        Value::Bytes(b"42".to_vec())
    );
    assert_eq!(parse_value("text:").unwrap(), Value::Bytes(Vec::new()));
    assert_eq!(parse_value("-").unwrap(), Value::Bytes(b"-".to_vec()));
    assert!(parse_value("hex:zz").is_err());
    assert!(parse_value("int:4x").is_err());
    assert!(parse_value("int:").is_err());
    assert!(parse_value("bool:yes").is_err());
}

#[test]
fn values_show_text_as_text_and_other_bytes_as_hex() {
    assert_eq!(
        show_value(Some(&Value::Bytes(b"hi".to_vec()))),
        "\"hi\" (bytes, UTF-8 text)"
    );
    assert_eq!(
        show_value(Some(&Value::Bytes(vec![0, 255]))),
        "0x00ff (bytes, hex)"
    );
    assert_eq!(
        show_value(Some(&Value::Bytes(vec![7]))),
        "0x07 (bytes, hex)"
    );
    assert_eq!(show_value(Some(&Value::Int(42.into()))), "42 (int)");
    assert_eq!(show_value(None), "absent");
    assert_eq!(
        value_json(Some(&Value::Bytes(vec![0xc3]))),
        json!({"type": "bytes", "hex": "c3"})
    );
}

#[test]
fn seeds_must_be_addresses() {
    assert!(parse_seeds("127.0.0.1:7000, 127.0.0.1:7001").is_ok());
    assert!(parse_seeds("").is_err());
    assert!(parse_seeds("nonsense").is_err());
    assert!(parse_seeds("127.0.0.1:99999").is_err());
}

#[test]
fn exit_codes_follow_the_outcome() {
    let get = ClientOp::Get { key: "k".into() };
    let cas = ClientOp::Cas {
        key: "k".into(),
        expected: "1".into(),
        new: "2".into(),
    };
    let incr = ClientOp::Incr {
        key: "k".into(),
        by: "1".into(),
    };
    let txn = ClientOp::Txn {
        transaction: "-".into(),
    };
    assert_eq!(report(&get, Ok(TxnResult::Get { value: None })).code, 0);
    let failed_cas = TxnResult::Cas {
        ok: false,
        current: Some(Value::Int(5.into())),
    };
    assert_eq!(report(&cas, Ok(failed_cas)).code, CONDITION_FAILED);
    let failed_txn = TxnResult::Txn {
        ok: false,
        reads: vec![],
    };
    assert_eq!(report(&txn, Ok(failed_txn)).code, CONDITION_FAILED);
    let not_int = TxnResult::Error {
        error: physalia_traces::ApplyError::NotAnInteger {
            key: Key("k".into()),
        },
    };
    let r = report(&incr, Ok(not_int));
    assert_eq!((r.code, r.outcome), (FAILED, "failed"));
    assert!(!r.line.contains("NotAnInteger"), "{}", r.line);
    let timeout = ClientError::Timeout {
        after_ms: 10,
        last: "x".into(),
    };
    assert_eq!(report(&get, Err(timeout)).code, UNKNOWN);
    assert_eq!(
        report(&get, Err(ClientError::Unavailable("x".into()))).code,
        UNAVAILABLE
    );
    assert_eq!(
        report(&get, Err(ClientError::Rejected("x".into()))).code,
        FAILED
    );
}
