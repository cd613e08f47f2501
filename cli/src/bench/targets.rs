//! The performance targets of issue 16, each compared with the figure this run measured
//! (never asserted: `met` is reported, and `null` where the run measured nothing to
//! compare, or where the comparison is not meaningful).

use serde_json::{json, Map, Value};

/// One target: what, the figure, its unit, the goal and whether the figure meets it.
struct Target {
    name: &'static str,
    figure: Option<f64>,
    unit: &'static str,
    goal: &'static str,
    met: Option<bool>,
    note: String,
}

/// The targets the figures of `suites` (by suite name; the node's parts under `node`)
/// speak to.
pub(super) fn compare(suites: &Map<String, Value>) -> Vec<Value> {
    let get = |path: &[&str]| -> Option<&Value> {
        let mut v = suites.get(path[0])?;
        for p in &path[1..] {
            v = v.get(p)?;
        }
        Some(v)
    };
    let num = |path: &[&str]| get(path).and_then(Value::as_f64);
    let mut out = Vec::new();
    let model_s = num(&["model", "seconds"]);
    out.push(Target {
        name: "model: default CI configuration",
        figure: model_s,
        unit: "s",
        goal: "<= 30 s",
        met: model_s.map(|s| s <= 30.0),
        note: String::new(),
    });
    let (sr, tlc) = (
        num(&["model", "unique_states_per_s"]),
        num(&["tla", "distinct_states_per_s"]),
    );
    let ratio = sr.zip(tlc).map(|(a, b)| a / b.max(1e-9));
    let matched = num(&["model", "unique_states"]) == num(&["tla", "distinct_states"]);
    out.push(Target {
        name: "model: stateright / TLC states per second",
        figure: ratio,
        unit: "x",
        goal: ">= 30x on a matched configuration",
        met: ratio.filter(|_| matched).map(|r| r >= 30.0),
        note: if ratio.is_some() && !matched {
            format!(
                "not a matched configuration ({} unique states against TLC's {} distinct): a throughput ratio, not the same state space",
                num(&["model", "unique_states"]).unwrap_or(0.0),
                num(&["tla", "distinct_states"]).unwrap_or(0.0)
            )
        } else {
            String::new()
        },
    });
    let sizes = get(&["replay", "sizes"]).and_then(Value::as_array);
    let first = sizes.and_then(|s| s.first());
    let bpe = first.and_then(|r| r["bytes_per_event"].as_f64());
    out.push(Target {
        name: "traces: bytes per event (default simulation)",
        figure: bpe,
        unit: "B",
        goal: "<= 150",
        met: bpe.map(|b| b <= 150.0),
        note: String::new(),
    });
    let million = sizes.and_then(|s| {
        s.iter()
            .find(|r| r["target_events"].as_u64().is_some_and(|e| e >= 1_000_000))
    });
    let rmr = million.map(|r| {
        r["read_s"].as_f64().unwrap_or(0.0)
            + r["merge_s"].as_f64().unwrap_or(0.0)
            + r["replay_s"].as_f64().unwrap_or(0.0)
    });
    out.push(Target {
        name: "traces: 10^6 events read + merged + replayed",
        figure: rmr,
        unit: "s",
        goal: "<= 2 s",
        met: rmr.map(|s| s <= 2.0),
        note: if million.is_none() && sizes.is_some() {
            "not run at 10^6 events (--replay-events 1000000)".to_owned()
        } else {
            String::new()
        },
    });
    for (name, path, goal, bound) in [
        (
            "sim: core steps per second, traces off",
            ["sim", "off", "core_steps_per_s"],
            ">= 1000000",
            1e6,
        ),
        (
            "sim: core steps per second, traces on",
            ["sim", "on", "core_steps_per_s"],
            ">= 300000",
            3e5,
        ),
    ] {
        let f = num(&path);
        out.push(Target {
            name,
            figure: f,
            unit: "steps/s",
            goal,
            met: f.map(|f| f >= bound),
            note: String::new(),
        });
    }
    let cost = num(&["node", "tracing", "ratio_on_to_off"]).map(|r| (1.0 - r) * 100.0);
    out.push(Target {
        name: "node: tracing cost (1 - on/off throughput)",
        figure: cost,
        unit: "%",
        goal: "<= 3 %",
        met: cost.map(|c| c <= 3.0),
        note: String::new(),
    });
    let idle = get(&["node", "idle", "runs"])
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter()
                .rev()
                .find(|r| r.get("bytes_per_idle_cell").is_some())
        });
    let per_cell = idle.and_then(|r| r["bytes_per_idle_cell"].as_f64());
    let cpu = idle.and_then(|r| r["cpu_percent_per_node"].as_f64());
    let cells = idle
        .and_then(|r| r["cells_per_node"].as_u64())
        .map(|c| format!("at {c} cells per node (the target is at 10^6)"))
        .unwrap_or_default();
    out.push(Target {
        name: "node: memory per parked cell",
        figure: per_cell,
        unit: "B",
        goal: "<= 1024",
        met: per_cell.map(|b| b <= 1024.0),
        note: cells.clone(),
    });
    out.push(Target {
        name: "node: idle CPU per node",
        figure: cpu,
        unit: "%",
        goal: "<= 1 %",
        met: cpu.map(|c| c <= 1.0),
        note: cells,
    });
    let many = num(&["node", "throughput", "spread", "ops_per_s"]);
    out.push(Target {
        name: "node: ops/s over 64 cells",
        figure: many,
        unit: "ops/s",
        goal: ">= 25200 (3x the 8.4 k of the issue)",
        met: many.map(|m| m >= 25_200.0),
        note: String::new(),
    });
    out.into_iter()
        .filter(|t| t.figure.is_some() || !t.note.is_empty())
        .map(|t| {
            json!({
                "target": t.name, "figure": t.figure, "unit": t.unit, "goal": t.goal,
                "met": t.met, "note": t.note,
            })
        })
        .collect()
}

/// The targets as lines of text.
pub(super) fn render(targets: &[Value]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<46} {:>18} {:<36} {}",
        "target", "figure", "goal", "met"
    )];
    for t in targets {
        let figure = t["figure"].as_f64().map_or_else(
            || "-".to_owned(),
            |f| {
                format!("{f:.1} {}", t["unit"].as_str().unwrap_or(""))
                    .trim()
                    .to_owned()
            },
        );
        let met = match t["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "n/a",
        };
        let mut line = format!(
            "{:<46} {:>18} {:<36} {met}",
            t["target"].as_str().unwrap_or(""),
            figure,
            t["goal"].as_str().unwrap_or("")
        );
        if let Some(n) = t["note"].as_str().filter(|n| !n.is_empty()) {
            line.push_str(&format!("  ({n})"));
        }
        lines.push(line);
    }
    lines
}
