//! Behaviours in the ITF trace format (the Informal Trace Format of Apalache's ADR-015, read
//! by Quint and the ITF tools): `check --itf` writes a counterexample of the model,
//! `conform --itf` the failing prefix of a trace.
//!
//! A document is `{"#meta": {...}, "vars": [names], "states": [state...]}`; every state is
//! an object holding exactly the variables (and its own `"#meta": {"index": i}`). Values:
//! integers `{"#bigint": "<decimal>"}`, tuples `{"#tup": [...]}`, maps `{"#map": [[k, v],
//! ...]}`, records as plain objects, strings and booleans as JSON's. [`validate`] checks a
//! document against those rules (the tests read back every file written).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

/// The most states one document holds: a longer behaviour keeps its last ones (the
/// document's `#meta` says from where).
pub const MAX_STATES: usize = 10_000;

/// An integer.
pub fn int(n: impl Into<i128>) -> Value {
    json!({ "#bigint": n.into().to_string() })
}

/// A tuple.
pub fn tup(items: Vec<Value>) -> Value {
    json!({ "#tup": items })
}

/// A map from `pairs`.
pub fn map(pairs: Vec<(Value, Value)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!({ "#map": pairs })
}

/// A document of `states` (each a record of `vars`), the first numbered `first`.
pub fn document(
    source: &str,
    description: &str,
    vars: &[&str],
    states: Vec<Map<String, Value>>,
    first: usize,
) -> Value {
    let states: Vec<Value> = states
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.insert("#meta".into(), json!({ "index": first + i }));
            Value::Object(s)
        })
        .collect();
    json!({
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": source,
            "description": description,
            "generated_by": format!("physalia {}", env!("CARGO_PKG_VERSION")),
        },
        "vars": vars,
        "states": states,
    })
}

/// Writes `doc` to `path`, after checking it is well-formed.
pub fn write(path: &Path, doc: &Value) -> Result<()> {
    validate(doc)
        .map_err(|e| anyhow::anyhow!("an ITF document this tool made is malformed: {e}"))?;
    let text = serde_json::to_string_pretty(doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Checks `doc` against the format's rules; returns the number of states.
pub fn validate(doc: &Value) -> Result<usize, String> {
    let vars: Vec<&str> = doc["vars"]
        .as_array()
        .ok_or("no `vars` array")?
        .iter()
        .map(|v| v.as_str().ok_or("a variable name is not a string"))
        .collect::<Result<_, _>>()?;
    let states = doc["states"].as_array().ok_or("no `states` array")?;
    for (i, s) in states.iter().enumerate() {
        let s = s
            .as_object()
            .ok_or_else(|| format!("state {i} is not an object"))?;
        for v in &vars {
            let value = s.get(*v).ok_or_else(|| format!("state {i} lacks `{v}`"))?;
            value_ok(value).map_err(|e| format!("state {i}, `{v}`: {e}"))?;
        }
        if let Some(k) = s
            .keys()
            .find(|k| *k != "#meta" && !vars.contains(&k.as_str()))
        {
            return Err(format!("state {i} holds `{k}`, which is not a variable"));
        }
    }
    Ok(states.len())
}

/// A non-empty run of decimal digits.
fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn value_ok(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Err("null is not an ITF value".into()),
        // A plain JSON integer only within the range every reader holds exactly.
        Value::Number(n) if n.as_i64().is_some_and(|i| i.unsigned_abs() < 1 << 53) => Ok(()),
        Value::Number(n) => Err(format!("{n} is not an integer")),
        Value::Bool(_) | Value::String(_) => Ok(()),
        Value::Array(items) => items.iter().try_for_each(value_ok),
        Value::Object(o) => match o.iter().next() {
            Some((k, inner)) if k.starts_with('#') => {
                if o.len() != 1 {
                    return Err(format!("`{k}` beside other keys"));
                }
                match (k.as_str(), inner) {
                    ("#bigint", Value::String(s))
                        if s.strip_prefix('-').is_some_and(digits) || digits(s) =>
                    {
                        Ok(())
                    }
                    ("#tup" | "#set", Value::Array(items)) => items.iter().try_for_each(value_ok),
                    ("#map", Value::Array(pairs)) => pairs.iter().try_for_each(|p| match p {
                        Value::Array(kv) if kv.len() == 2 => {
                            value_ok(&kv[0])?;
                            value_ok(&kv[1])
                        }
                        _ => Err("a #map entry is not a [key, value] pair".into()),
                    }),
                    ("#unserializable", Value::String(_)) => Ok(()),
                    _ => Err(format!("malformed `{k}`")),
                }
            }
            _ => o.values().try_for_each(value_ok),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_validated() {
        let mut s = Map::new();
        s.insert("x".into(), int(3));
        s.insert(
            "m".into(),
            map(vec![(int(0), tup(vec![int(1), json!("a")]))]),
        );
        let doc = document("t", "d", &["x", "m"], vec![s.clone()], 0);
        assert_eq!(validate(&doc), Ok(1));
        let mut bad = s.clone();
        bad.remove("m");
        let doc = document("t", "d", &["x", "m"], vec![s.clone(), bad], 0);
        assert!(validate(&doc).unwrap_err().contains("state 1 lacks `m`"));
        let mut bad = s;
        bad.insert("x".into(), json!({"#bigint": "1.5"}));
        let doc = document("t", "d", &["x", "m"], vec![bad], 0);
        assert!(validate(&doc).unwrap_err().contains("malformed `#bigint`"));
        let doc = json!({"vars": ["x"], "states": [{"x": null}]});
        assert!(validate(&doc).is_err());
        for bad in [
            json!({"#bigint": "-"}),
            json!({"#bigint": ""}),
            json!(1u64 << 60),
        ] {
            let doc = json!({"vars": ["x"], "states": [{"x": bad}]});
            assert!(validate(&doc).is_err(), "{bad}");
        }
    }
}
