//! `physalia colony check`: single- and pair-failure blast radius, and the verdict.

use std::time::Instant;

use anyhow::Result;
use physalia_colony::check::{check, CheckReport};
use physalia_colony::placement::{Placement, Resolved};
use physalia_colony::{Level, Topology};
use serde_json::{json, Value};

use super::{emit, emit_json, load_placement, CheckArgs};

fn domain_json(topo: &Topology, d: usize) -> Value {
    json!({ "level": topo.domains[d].level, "name": topo.domains[d].name })
}

fn names(p: &Placement, cells: &[usize], limit: usize) -> String {
    let mut s: Vec<&str> = cells
        .iter()
        .take(limit)
        .map(|&c| p.cells[c].id.as_str())
        .collect();
    if cells.len() > limit {
        s.push("...");
    }
    s.join(", ")
}

pub(super) fn run(a: &CheckArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let (placement, resolved) = load_placement(&topo, &a.placement)?;
    let started = Instant::now();
    let report: CheckReport = check(&topo, &resolved, a.pairs);
    let elapsed = started.elapsed().as_secs_f64();
    let violating = report.violating_cells(&topo);
    let code = u8::from(!violating.is_empty());
    let mixed = mixed_colors(&topo, &resolved);
    if a.json {
        let mut v = check_json(&topo, &placement, &report, &violating, elapsed);
        v["cells_mixing_colors"] = json!(mixed.len());
        emit_json("check", &v)?;
        return Ok(code);
    }
    let mut t = format!(
        "topology {}: {}\nplacement {}: {} cells ({})\n",
        topo.source,
        topo.summary(),
        a.placement.display(),
        resolved.len(),
        placement.strategy
    );
    let rule_domains = report
        .singles
        .iter()
        .filter(|f| Level::RULE.contains(&topo.domains[f.domain].level))
        .count();
    t += &format!("single-domain failures: {rule_domains} domains at az, row, rack, power\n");
    for f in report.violations(&topo) {
        t += &format!(
            "  {} takes the quorum of {} cells whose client survives ({}); {} clients lose a cell\n",
            topo.domains[f.domain],
            f.cells_lost.len(),
            names(&placement, &f.cells_lost, a.limit),
            f.clients_lost.len()
        );
    }
    for f in &report.singles {
        let level = topo.domains[f.domain].level;
        if !Level::RULE.contains(&level) && !f.cells_lost.is_empty() {
            t += &format!(
                "  (not judged) {} takes {} cells whose client survives\n",
                topo.domains[f.domain],
                f.cells_lost.len()
            );
        }
    }
    if let Some(p) = &report.pairs {
        t += &format!(
            "pairs: {} examined ({} nested pairs skipped); {} take at least one quorum; {} cells lost to some pair\n",
            p.examined,
            p.nested,
            p.failing.len(),
            p.cells_ever_lost
        );
        for f in p.failing.iter().take(a.limit) {
            t += &format!(
                "  {} + {}: {} cells ({}), {} clients\n",
                topo.domains[f.a],
                topo.domains[f.b],
                f.cells_lost,
                names(&placement, &f.example_cells, 5),
                f.clients_lost
            );
        }
    }
    if !mixed.is_empty() {
        t += &format!(
            "colors (reported, not judged): {} cells mix colors ({})\n",
            mixed.len(),
            names(&placement, &mixed, a.limit)
        );
    }
    t += &format!("checked in {elapsed:.3} s\n");
    t += &if violating.is_empty() {
        "verdict: PASS: every single-domain failure leaves every cell whose client survives a quorum\n".to_string()
    } else {
        format!(
            "verdict: FAIL: {} cells lose their quorum to a single-domain failure their client survives: {}\n",
            violating.len(),
            names(&placement, &violating, a.limit)
        )
    };
    emit(&t)?;
    Ok(code)
}

/// Cells whose members are not all of one color.
fn mixed_colors(topo: &Topology, p: &Resolved) -> Vec<usize> {
    let color = |n: usize| topo.nodes[n].domain(Level::Color);
    (0..p.len())
        .filter(|&c| {
            let m = &p.members[c];
            m.iter().any(|&n| color(n) != color(m[0]))
        })
        .collect()
}

fn check_json(
    topo: &Topology,
    placement: &Placement,
    report: &CheckReport,
    violating: &[usize],
    elapsed: f64,
) -> Value {
    let ids = |cells: &[usize]| -> Vec<&str> {
        cells
            .iter()
            .map(|&c| placement.cells[c].id.as_str())
            .collect()
    };
    let clients =
        |cl: &[usize]| -> Vec<&str> { cl.iter().map(|&c| topo.clients[c].name.as_str()).collect() };
    json!({
        "verdict": if violating.is_empty() { "pass" } else { "fail" },
        "topology": topo.source,
        "cells": placement.cells.len(),
        "strategy": placement.strategy,
        "violating_cells": ids(violating),
        "violations": report.violations(topo).map(|f| json!({
            "domain": domain_json(topo, f.domain),
            "cells": ids(&f.cells_lost),
            "clients": clients(&f.clients_lost),
        })).collect::<Vec<_>>(),
        "singles": report.singles.iter().map(|f| json!({
            "domain": domain_json(topo, f.domain),
            "cells_lost": f.cells_lost.len(),
            "clients_lost": f.clients_lost.len(),
            "cells_down_with_client": f.cells_down_with_client,
        })).collect::<Vec<_>>(),
        "pairs": report.pairs.as_ref().map(|p| json!({
            "examined": p.examined,
            "nested": p.nested,
            "cells_ever_lost": p.cells_ever_lost,
            "failing": p.failing.iter().map(|f| json!({
                "a": domain_json(topo, f.a),
                "b": domain_json(topo, f.b),
                "cells_lost": f.cells_lost,
                "clients_lost": f.clients_lost,
                "example_cells": ids(&f.example_cells),
            })).collect::<Vec<_>>(),
        })),
        "elapsed_s": elapsed,
    })
}
