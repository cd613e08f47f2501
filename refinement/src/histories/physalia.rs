//! Our history format: JSON Lines, one operation per line (see the module above).

use std::collections::{BTreeMap, HashMap};

use physalia_traces::{ClientId, Txn, TxnResult};
use serde_json::Value as Json;

use super::{At, History, InputError, MAX_OPERATIONS};
use crate::linearizability::Operation;

/// The longest line read (bytes): an operation is far smaller.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The line each `(client, op)` of a cell was first seen on.
type Seen = HashMap<(u64, u64), usize>;

/// Parses the JSONL history in `text`, one [`History`] per cell.
pub(super) fn parse(text: &str, at: At<'_>) -> Result<Vec<History>, InputError> {
    // Per cell: the history, and the line of each (client, op) seen.
    let mut cells: BTreeMap<String, (History, Seen)> = BTreeMap::new();
    let mut total = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if raw.len() > MAX_LINE_BYTES {
            return Err(at.err(
                line,
                None,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let v: Json =
            serde_json::from_str(raw).map_err(|e| at.err(line, None, format!("not JSON: {e}")))?;
        let Json::Object(map) = &v else {
            return Err(at.err(line, None, "not a JSON object"));
        };
        for k in map.keys() {
            if ![
                "client",
                "op",
                "cell",
                "txn",
                "invoke_ms",
                "return_ms",
                "result",
            ]
            .contains(&k.as_str())
            {
                return Err(at.err(line, Some(k), "unknown field"));
            }
        }
        let uint = |field: &str| -> Result<u64, InputError> {
            v.get(field)
                .ok_or_else(|| at.err(line, Some(field), "missing"))?
                .as_u64()
                .ok_or_else(|| at.err(line, Some(field), "not a non-negative integer"))
        };
        let client = uint("client")?;
        let op = uint("op")?;
        let invoke = uint("invoke_ms")?;
        let ret = match v.get("return_ms") {
            None | Some(Json::Null) => None,
            Some(r) => Some(r.as_u64().ok_or_else(|| {
                at.err(
                    line,
                    Some("return_ms"),
                    "not a non-negative integer or null",
                )
            })?),
        };
        let txn: Txn = serde_json::from_value(
            v.get("txn")
                .cloned()
                .ok_or_else(|| at.err(line, Some("txn"), "missing"))?,
        )
        .map_err(|e| at.err(line, Some("txn"), format!("not a transaction: {e}")))?;
        let result = match v.get("result") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s == "unknown" => None,
            Some(Json::Object(r)) if r.len() == 1 && r.contains_key("known") => Some(
                serde_json::from_value::<TxnResult>(r["known"].clone())
                    .map_err(|e| at.err(line, Some("result"), format!("not a result: {e}")))?,
            ),
            Some(_) => {
                return Err(at.err(
                    line,
                    Some("result"),
                    "neither {\"known\": RESULT} nor \"unknown\"",
                ))
            }
        };
        if result.is_some() && ret.is_none() {
            return Err(at.err(
                line,
                Some("return_ms"),
                "a known result needs a return time",
            ));
        }
        if ret.is_some_and(|r| r < invoke) {
            return Err(at.err(line, Some("return_ms"), "before invoke_ms"));
        }
        let cell = match v.get("cell") {
            None => "history".to_owned(),
            Some(Json::String(c)) => c.clone(),
            Some(_) => return Err(at.err(line, Some("cell"), "not a string")),
        };
        total += 1;
        if total > MAX_OPERATIONS {
            return Err(at.err(line, None, format!("more than {MAX_OPERATIONS} operations")));
        }
        let (h, seen) = cells.entry(cell.clone()).or_insert_with(|| {
            let h = History {
                cell,
                ops: Vec::new(),
                lines: Vec::new(),
            };
            (h, HashMap::new())
        });
        if let Some(first) = seen.insert((client, op), line) {
            return Err(at.err(
                line,
                Some("op"),
                format!("client {client} op {op} is listed twice (first on line {first})"),
            ));
        }
        h.ops.push(Operation {
            client: ClientId(client),
            op,
            txn,
            invoke,
            ret,
            result,
        });
        h.lines.push(line);
    }
    Ok(cells.into_values().map(|(h, _)| h).collect())
}
