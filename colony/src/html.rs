//! The report as one self-contained HTML page: inline CSS and SVG, no script, no external
//! resource. Every text from a file (domain names, the topology's path) is escaped.

use std::fmt::Write;

use crate::report::{Evaluation, Outcome, Report};
use crate::topology::Level;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1b1b;max-width:1220px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}\
p.sub{color:#555;margin:0 0 12px}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f0f0f0}\
td.l,th.l{text-align:left}tr.best td{background:#eef7ee}.bad{color:#b2182b;font-weight:600}\
.ok{color:#1a7f37;font-weight:600}.note{font-size:12px;color:#555;max-width:1100px}\
.panel{display:inline-block;vertical-align:top;margin:0 18px 12px 0}.panel h3{font-size:14px;margin:4px 0}\
svg text{font-family:system-ui,sans-serif}";

const COLORS: [&str; 4] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];

fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.2e}")
    }
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Colony report</title><style>{STYLE}</style></head><body>\n\
         <h1>Colony placement report</h1>\n<p class=\"sub\">{} &middot; {} &middot; {} cells \
         &middot; seed {}</p>\n",
        escape(&report.topology),
        escape(&report.summary),
        report.cells,
        report.seed
    );
    strategies_table(&mut h, report);
    let _ = write!(
        h,
        "<h2>Distribution of P(cell unavailable | client available)</h2>\n{}",
        distribution(report)
    );
    h.push_str("<h2>Blast radius per domain</h2>\n<p class=\"note\">Each square is one domain; its colour is the share of all cells that lose their quorum while their client survives when that domain fails (log scale; green: none). Colors are deployment groups, not failure domains: every cell is of one color by design, so a color takes its cells (shown, not judged). Hover for the counts.</p>\n");
    for (i, o) in report.strategies.iter().enumerate() {
        if let Outcome::Placed(e) = o {
            let _ = writeln!(
                h,
                "<div class=\"panel\"><h3 style=\"color:{}\">{}</h3>{}</div>",
                COLORS[i % 4],
                escape(&e.strategy),
                heat_map(e, report.cells)
            );
        }
    }
    rates_table(&mut h, report);
    h.push_str(
        "<p class=\"note\">The rule: for every domain at the levels az, row, rack and power that \
         does not contain the cell's client, the members outside it are still a quorum. \
         Probabilities are exact under independent failures of nodes and domains with the \
         rates above (conditioned on the client's domains being up); U is the swap \
         heuristic's objective, the same probability to second order summed over cells.</p>\n\
         </body></html>\n",
    );
    h
}

fn strategies_table(h: &mut String, report: &Report) {
    h.push_str(
        "<h2>Strategies side by side</h2>\n<table><tr><th class=\"l\">strategy</th>\
         <th>rule</th><th>P(cell available | client available)</th><th>mean P(unavailable)</th>\
         <th>&times; domain-aware+swaps</th><th>worst cell</th><th>objective U</th>\
         <th>cells per node (min / mean / max)</th><th>distinct juries</th></tr>\n",
    );
    for o in &report.strategies {
        match o {
            Outcome::Placed(e) => {
                let rule = if e.violating_cells == 0 {
                    "<span class=\"ok\">holds</span>".to_string()
                } else {
                    format!(
                        "<span class=\"bad\">{} cells, {} domains</span>",
                        e.violating_cells, e.violating_domains
                    )
                };
                let ratio = report
                    .ratio(&e.strategy, "domain-aware+swaps")
                    .map_or("&ndash;".into(), |r| format!("{r:.2}"));
                let best = if e.strategy == "domain-aware+swaps" {
                    " class=\"best\""
                } else {
                    ""
                };
                let _ = writeln!(
                    h,
                    "<tr{best}><td class=\"l\">{}</td><td>{rule}</td><td>{:.10}</td><td>{}</td>\
                     <td>{ratio}</td><td>{}</td><td>{}</td><td>{} / {:.1} / {}</td><td>{}</td></tr>",
                    escape(&e.strategy),
                    1.0 - e.mean_unavailability,
                    sci(e.mean_unavailability),
                    sci(e.max_unavailability),
                    sci(e.objective),
                    e.load.0,
                    e.load.1,
                    e.load.2,
                    e.distinct_juries
                );
            }
            Outcome::Failed { strategy, error } => {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td colspan=\"8\" class=\"l bad\">cannot place: {}</td></tr>",
                    escape(strategy),
                    escape(error)
                );
            }
        }
    }
    h.push_str("</table>\n");
}

fn rates_table(h: &mut String, report: &Report) {
    let m = &report.model;
    h.push_str("<h2>Failure model</h2>\n<table><tr><th class=\"l\">unit</th><th>MTTF (h)</th><th>MTTR (h)</th><th>P(down)</th></tr>\n");
    for (name, r) in [
        ("node", m.node),
        ("rack", m.rack),
        ("power domain", m.power),
        ("row", m.row),
        ("AZ", m.az),
        ("region", m.region),
    ] {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.mttf_hours,
            r.mttr_hours,
            sci(r.unavailability())
        );
    }
    h.push_str("</table>\n");
}

/// Fill colour of a domain losing `frac` of all cells.
fn fill(frac: f64) -> String {
    if frac <= 0.0 {
        return "#d9efd9".into();
    }
    let x = ((1.0 + 1000.0 * frac).log10() / 3.0).clamp(0.08, 1.0);
    // From a pale orange to a deep red.
    let lerp = |a: f64, b: f64| (a + (b - a) * x).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(253.0, 165.0),
        lerp(219.0, 15.0),
        lerp(199.0, 21.0)
    )
}

fn heat_map(e: &Evaluation, cells: usize) -> String {
    const SIZE: usize = 11;
    const PER_LINE: usize = 42;
    let levels = [
        Level::Az,
        Level::Row,
        Level::Rack,
        Level::Power,
        Level::Color,
    ];
    let mut body = String::new();
    let mut y = 4;
    let mut widest = 1;
    for level in levels {
        let doms: Vec<_> = e.blast.iter().filter(|b| b.level == level).collect();
        if doms.is_empty() {
            continue;
        }
        widest = widest.max(doms.len().min(PER_LINE));
        let _ = write!(
            body,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text>",
            y + 9,
            level.name()
        );
        for (i, b) in doms.iter().enumerate() {
            let x = 44 + (i % PER_LINE) * (SIZE + 2);
            let yy = y + (i / PER_LINE) * (SIZE + 2);
            let frac = b.cells_lost as f64 / cells.max(1) as f64;
            let _ = write!(
                body,
                "<rect x=\"{x}\" y=\"{yy}\" width=\"{SIZE}\" height=\"{SIZE}\" fill=\"{}\" stroke=\"#999\" stroke-width=\"0.5\"><title>{} {}: {} cells lost, {} clients lose a cell, {} cells down with their client</title></rect>",
                fill(frac),
                level.name(),
                escape(&b.domain),
                b.cells_lost,
                b.clients_lost,
                b.cells_down_with_client
            );
        }
        y += doms.len().div_ceil(PER_LINE) * (SIZE + 2) + 6;
    }
    let width = 44 + widest * (SIZE + 2) + 4;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" role=\"img\">{body}</svg>"
    )
}

fn distribution(report: &Report) -> String {
    let placed: Vec<(usize, &Evaluation)> = report
        .strategies
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Outcome::Placed(e) => Some((i, &**e)),
            Outcome::Failed { .. } => None,
        })
        .collect();
    let logs = |e: &Evaluation| -> Vec<f64> {
        e.per_cell
            .iter()
            .map(|&p| if p > 0.0 { p.log10() } else { -16.0 })
            .collect()
    };
    let all: Vec<f64> = placed.iter().flat_map(|(_, e)| logs(e)).collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(-16.0);
    let hi = all
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .min(0.0)
        .max(lo + 1.0);
    let (lo, hi) = if lo.is_finite() {
        (lo, hi)
    } else {
        (-12.0, 0.0)
    };
    let bins = (((hi - lo) * 2.0).round() as usize).max(1);
    let (w, hgt, left, bottom) = (960.0, 240.0, 56.0, 36.0);
    let pw = w - left - 190.0;
    let ph = hgt - bottom - 14.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" role=\"img\">\
         <rect x=\"{left}\" y=\"10\" width=\"{pw}\" height=\"{ph}\" fill=\"#fafafa\" stroke=\"#bbb\"/>"
    );
    let mut series = Vec::new();
    let mut top: f64 = 0.0;
    for (i, e) in &placed {
        let mut hist = vec![0usize; bins];
        for v in logs(e) {
            let b = (((v - lo) * 2.0).floor().max(0.0) as usize).min(bins - 1);
            hist[b] += 1;
        }
        let n = e.per_cell.len().max(1) as f64;
        let fr: Vec<f64> = hist.iter().map(|&c| c as f64 / n).collect();
        top = fr.iter().copied().fold(top, f64::max);
        series.push((*i, e.strategy.clone(), fr));
    }
    let top = if top > 0.0 { top } else { 1.0 };
    for k in 0..=4 {
        let y = 10.0 + ph - ph * f64::from(k) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.0}%</text>",
            left + pw,
            left - 6.0,
            y + 4.0,
            top * 100.0 * f64::from(k) / 4.0
        );
    }
    let decades = (hi - lo).round() as i64;
    for d in 0..=decades {
        let x = left + pw * d as f64 / decades.max(1) as f64;
        let _ = write!(
            svg,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" stroke=\"#999\"/>\
             <text x=\"{x}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">1e{}</text>",
            10.0 + ph,
            14.0 + ph,
            26.0 + ph,
            lo as i64 + d
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">P(cell unavailable | client available), half-decade bins; y: share of cells</text>",
        left + pw / 2.0,
        hgt - 2.0
    );
    for (row, (i, name, fr)) in series.iter().enumerate() {
        let color = COLORS[i % 4];
        let pts: Vec<String> = fr
            .iter()
            .enumerate()
            .map(|(b, f)| {
                let x = left + pw * (b as f64 + 0.5) / bins as f64;
                let y = 10.0 + ph - ph * f / top;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        // Later strategies draw thinner (the last dashed) on top, so identical curves
        // stay visible.
        let width = 2 + series.len().saturating_sub(row + 1) * 2;
        let dash = if row + 1 == series.len() && row > 0 {
            " stroke-dasharray=\"7 4\""
        } else {
            ""
        };
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" stroke-opacity=\"0.85\"{dash} points=\"{}\"/>",
            pts.join(" ")
        );
        for p in &pts {
            if let Some((x, y)) = p.split_once(',') {
                let _ = write!(
                    svg,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{color}\"/>"
                );
            }
        }
        let ly = 24.0 + row as f64 * 18.0;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            left + pw + 12.0,
            ly - 4.0,
            left + pw + 32.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
