//! The colony's benchmark: absolute times and ratios, measured in one run.
//!
//! ```sh
//! cargo run --release -p physalia-colony --example colony_bench
//! cargo run --release -p physalia-colony --example colony_bench -- --cells 10000 --sim-cells 100000 --hours 87600
//! ```
//!
//! On the generated 1,008-node topology (seed 1): placement of `--cells` cells (rotation
//! and domain-aware, then the swaps), `check` with singles and with pairs, the exact
//! availability of every cell, and a Monte Carlo of `--hours` simulated hours over
//! `--sim-cells` cells. Prints each time and the ratios (pairs over singles, domain-aware
//! over rotation, simulated hours per wall second).

use std::time::Instant;

use physalia_colony::availability::cell_unavailability;
use physalia_colony::check::check;
use physalia_colony::domain_aware::{self, default_cap};
use physalia_colony::gen::GenParams;
use physalia_colony::placement::{self, Demand};
use physalia_colony::simulate::{simulate, SimOptions};
use physalia_colony::swap::{self, SwapOptions};
use physalia_colony::{FailureModel, Topology};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64())
}

fn main() {
    let cells = arg("--cells", 10_000.0) as usize;
    let sim_cells = arg("--sim-cells", 100_000.0) as usize;
    let hours = arg("--hours", 87_600.0);
    let params = GenParams::default();
    let text = params.generate().expect("default parameters are valid");
    let topo = Topology::parse(&text, "generated").expect("the generator writes valid files");
    let model = FailureModel::default();
    println!("topology: {} ({})", topo.summary(), params.command());

    let demand = Demand::round_robin(&topo, cells, 7);
    let (rot, t_rot) = time(|| placement::rotation(&topo, &demand));
    let opts = domain_aware::Options {
        seed: 1,
        ..Default::default()
    };
    let (da, t_da) = time(|| domain_aware::place(&topo, &demand, &opts));
    let Ok((mut da, stats)) = da else {
        println!(
            "domain-aware could not place: {}",
            da.err().map(|e| e.to_string()).unwrap_or_default()
        );
        return;
    };
    println!(
        "\nplace {cells} cells: rotation {t_rot:.3} s, domain-aware {t_da:.3} s (x{:.0}); cap {} cells/node; scopes row/az/region {:?}",
        t_da / t_rot.max(1e-9),
        stats.cap,
        stats.by_scope
    );
    let cap = default_cap(&topo, &demand);
    let (s, t_swap) = time(|| swap::improve(&topo, &model, &mut da, cap, &SwapOptions::default()));
    println!(
        "swaps: {t_swap:.3} s, {} moves in {} passes, U {:.3e} -> {:.3e}",
        s.moves, s.passes, s.objective_before, s.objective_after
    );

    for (name, p) in [("rotation", &rot), ("domain-aware", &da)] {
        let (single, t_single) = time(|| check(&topo, p, false));
        let (pairs, t_pairs) = time(|| check(&topo, p, true));
        let pr = pairs
            .pairs
            .as_ref()
            .map_or((0, 0), |x| (x.examined, x.failing.len()));
        println!(
            "check {name}: singles {t_single:.3} s ({} violating cells); with pairs {t_pairs:.3} s ({} pairs examined, {} take a quorum); pairs/singles x{:.1}",
            single.violating_cells(&topo).len(),
            pr.0,
            pr.1,
            t_pairs / t_single.max(1e-9)
        );
    }
    let (sum, t_exact) = time(|| {
        da.members
            .iter()
            .zip(&da.client)
            .map(|(m, &c)| cell_unavailability(&topo, &model, m, c))
            .sum::<f64>()
    });
    println!(
        "exact availability of {cells} cells: {t_exact:.3} s ({:.1} us/cell); mean P(unavailable | client up) {:.3e}",
        t_exact * 1e6 / cells.max(1) as f64,
        sum / cells.max(1) as f64
    );

    let sim_demand = Demand::round_robin(&topo, sim_cells, 7);
    let (sim_da, t_place_sim) = time(|| domain_aware::place(&topo, &sim_demand, &opts));
    let Ok((sim_da, _)) = sim_da else {
        println!("domain-aware could not place {sim_cells} cells");
        return;
    };
    let sim_rot = placement::rotation(&topo, &sim_demand);
    println!("\nplace {sim_cells} cells domain-aware: {t_place_sim:.2} s");
    let sopts = SimOptions {
        hours,
        seed: 1,
        ..Default::default()
    };
    let mut rates = Vec::new();
    for (name, p) in [("rotation", &sim_rot), ("domain-aware", &sim_da)] {
        let (r, t) = time(|| simulate(&topo, p, &sopts));
        let cell_hours: f64 = r.cells.iter().map(|c| c.downtime_hours).sum();
        let mean_client =
            r.clients.iter().map(|c| c.availability).sum::<f64>() / r.clients.len().max(1) as f64;
        println!(
            "simulate {name}: {hours} h over {sim_cells} cells in {t:.2} s: {:.0} simulated h/s, {} events ({:.0}/s), {} cell transitions; {cell_hours:.1} cell-hours without quorum while the client was up; mean client availability {mean_client:.9}",
            r.hours / t,
            r.events,
            r.events as f64 / t,
            r.cell_transitions
        );
        rates.push((cell_hours, mean_client));
    }
    if let [(rot_h, rot_a), (da_h, da_a)] = rates[..] {
        println!(
            "simulated unavailability, rotation / domain-aware: x{:.0} (cell-hours {rot_h:.1} vs {da_h:.1}; client unavailability {:.3e} vs {:.3e})",
            rot_h / da_h.max(1e-9),
            1.0 - rot_a,
            1.0 - da_a
        );
    }
}
