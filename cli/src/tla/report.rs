//! The outcomes of `tla check`: an aligned table for people, one JSON document for
//! machines.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{TlcReport, Verdict};

/// The outcome of one configuration.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Configuration name from the manifest.
    pub name: String,
    /// Module and cfg file TLC ran.
    pub module: String,
    /// TLC configuration file.
    pub cfg: String,
    /// What the manifest expects.
    pub expected: Verdict,
    /// What TLC reported, with its figures.
    #[serde(flatten)]
    pub report: TlcReport,
    /// Wall-clock seconds of the TLC run.
    pub seconds: f64,
    /// Whether `report.verdict` equals `expected`.
    pub ok: bool,
}

/// Prints the outcomes: as one JSON document, or as the table and a line saying
/// how many verdicts differ from the expected ones.
pub fn print(manifest_path: &Path, outcomes: &[Outcome], all_ok: bool, json: bool) -> Result<()> {
    if json {
        let doc = serde_json::json!({
            "manifest": manifest_path.display().to_string(),
            "ok": all_ok,
            "configurations": outcomes,
        });
        crate::output::print_json("physalia-tla-check", doc)?;
    } else {
        print!("{}", render_table(outcomes));
        let bad = outcomes.iter().filter(|o| !o.ok).count();
        if bad == 0 {
            println!("all {} verdicts as expected", outcomes.len());
        } else {
            println!(
                "{bad} of {} verdicts differ from the expected ones",
                outcomes.len()
            );
        }
    }
    Ok(())
}

/// One JUnit case per configuration: failed when TLC's verdict differs from the expected
/// one, an error when TLC reached none.
pub fn junit_cases(outcomes: &[Outcome]) -> Vec<crate::junit::Case> {
    use crate::junit::{Case, Status};
    outcomes
        .iter()
        .map(|o| {
            let status = match (&o.report.verdict, o.ok) {
                (_, true) => Status::Passed,
                (Verdict::Error(m), false) => Status::Error(format!("TLC reached no verdict: {m}")),
                (got, false) => Status::Failed(format!("expected {}, TLC says {got}", o.expected)),
            };
            Case::new(format!("{} ({} {})", o.name, o.module, o.cfg), status)
                .seconds(o.seconds)
                .detail(format!(
                    "expected {}; distinct states {}; depth {}",
                    o.expected,
                    opt(o.report.distinct_states),
                    opt(o.report.depth)
                ))
        })
        .collect()
}

/// A figure TLC printed, or `-` when it printed none.
fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// Formats outcomes as an aligned text table.
pub fn render_table(outcomes: &[Outcome]) -> String {
    let header = [
        "configuration",
        "expected",
        "actual",
        "distinct states",
        "depth",
        "time",
        "trace",
        "",
    ];
    let rows: Vec<[String; 8]> = outcomes
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                o.expected.to_string(),
                o.report.verdict.to_string(),
                opt(o.report.distinct_states),
                opt(o.report.depth),
                format!("{:.1}s", o.seconds),
                opt(o.report.trace_states),
                if o.ok {
                    "ok".to_string()
                } else {
                    "MISMATCH".to_string()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tla::parse_tlc_output;

    const VIOLATION: &str = include_str!("../../tests/data/tlc_invariant_violated.txt");

    #[test]
    fn the_table_has_every_column_and_flags_mismatches() {
        let outcome = |name: &str, ok: bool| Outcome {
            name: name.into(),
            module: "M".into(),
            cfg: "c.cfg".into(),
            expected: Verdict::Pass,
            report: parse_tlc_output(VIOLATION, &[]),
            seconds: 1.25,
            ok,
        };
        let table = render_table(&[outcome("good", true), outcome("bad", false)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("configuration") && lines[0].contains("trace"));
        let good: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            good,
            [
                "good",
                "pass",
                "violates",
                "Durability",
                "845",
                "6",
                "1.2s",
                "6",
                "ok"
            ]
        );
        assert!(lines[2].ends_with("MISMATCH"), "{table}");
    }
}
