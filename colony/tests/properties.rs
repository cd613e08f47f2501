//! Properties on random topologies: domain-aware placement finds a jury exactly when one
//! exists (brute force over every subset), never breaks the rule, one color per cell,
//! under the cap; the indexed pair checker agrees with a brute-force one; parsers never
//! panic on any text.

use physalia_colony::check::{check, tolerance};
use physalia_colony::domain_aware::{self, default_cap};
use physalia_colony::placement::{self, Demand, Placement, Resolved};
use physalia_colony::swap::keeps_rule;
use physalia_colony::{Level, Topology};
use proptest::prelude::*;

/// A node's (az, row, rack, power, color) as small numbers.
type Shape = (u8, u8, u8, u8, u8);

fn topology_text(nodes: &[Shape], client: (u8, Option<u8>)) -> String {
    let mut s = String::new();
    for (i, &(az, row, rack, power, color)) in nodes.iter().enumerate() {
        // Names carry their parents, so the nesting is always consistent.
        s += &format!(
            "[[node]]\nid = \"n{i}\"\nregion = \"r\"\naz = \"a{az}\"\nrow = \"a{az}w{row}\"\n\
             rack = \"a{az}w{row}k{rack}\"\npower = \"a{az}p{power}\"\ncolor = \"c{color}\"\n"
        );
    }
    let (az, row) = client;
    // The client's AZ and row must exist: fall back to the first node's.
    let (az, row) = if nodes
        .iter()
        .any(|n| n.0 == az && row.is_none_or(|w| n.1 == w))
    {
        (az, row)
    } else {
        (nodes[0].0, Some(nodes[0].1))
    };
    s += &format!("[[client]]\nid = \"x\"\nregion = \"r\"\naz = \"a{az}\"\n");
    if let Some(w) = row {
        s += &format!("row = \"a{az}w{w}\"\n");
    }
    s
}

fn shapes(max: usize) -> impl Strategy<Value = Vec<Shape>> {
    proptest::collection::vec((0u8..3, 0u8..2, 0u8..3, 0u8..3, 0u8..2), 1..=max)
}

/// Whether some `k`-subset of the nodes keeps the rule for client 0, in one color.
fn feasible(t: &Topology, k: usize) -> bool {
    let n = t.nodes.len();
    if k > n {
        return false;
    }
    (0u32..(1 << n)).any(|mask| {
        if mask.count_ones() as usize != k {
            return false;
        }
        let m: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        let color = t.nodes[m[0]].domain(Level::Color);
        m.iter().all(|&i| t.nodes[i].domain(Level::Color) == color) && keeps_rule(t, &m, Some(0))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn domain_aware_places_exactly_when_a_jury_exists(
        nodes in shapes(10),
        client in (0u8..3, proptest::option::of(0u8..2)),
        k in 1usize..=7,
        seed in any::<u64>(),
    ) {
        let t = Topology::parse(&topology_text(&nodes, client), "t").unwrap();
        let d = Demand::round_robin(&t, 1, k);
        let opts = domain_aware::Options { seed, ..Default::default() };
        let placed = domain_aware::place(&t, &d, &opts);
        prop_assert_eq!(placed.is_ok(), feasible(&t, k), "{:?}", placed.as_ref().err().map(|e| e.to_string()));
        if let Ok((p, _)) = placed {
            prop_assert!(check(&t, &p, false).violating_cells(&t).is_empty());
        } else if let Err(e) = placed {
            // The error names the cell.
            prop_assert!(e.to_string().starts_with("cell c0"), "{}", e);
        }
    }

    #[test]
    fn placed_cells_never_give_a_domain_a_majority(
        nodes in shapes(40),
        client in (0u8..3, proptest::option::of(0u8..2)),
        cells in 1usize..40,
        k in 1usize..=7,
        seed in any::<u64>(),
    ) {
        let t = Topology::parse(&topology_text(&nodes, client), "t").unwrap();
        let d = Demand::round_robin(&t, cells, k);
        let opts = domain_aware::Options { seed, ..Default::default() };
        if let Ok((p, stats)) = domain_aware::place(&t, &d, &opts) {
            prop_assert_eq!(stats.cap, default_cap(&t, &d));
            prop_assert!(check(&t, &p, true).violating_cells(&t).is_empty());
            prop_assert!(p.load(t.nodes.len()).iter().all(|&l| l <= stats.cap));
            for m in &p.members {
                let c = t.nodes[m[0]].domain(Level::Color);
                prop_assert!(m.iter().all(|&n| t.nodes[n].domain(Level::Color) == c));
                // No majority (no more than the tolerance) in any domain the client
                // survives, at every rule level.
                for &level in &Level::RULE {
                    for dom in t.domains_at(level) {
                        if t.client_in(0, dom) { continue; }
                        let inside = m.iter().filter(|&&n| t.nodes[n].domain(level) == Some(dom)).count();
                        prop_assert!(inside <= tolerance(m.len()));
                    }
                }
            }
        }
    }

    #[test]
    fn indexed_pairs_agree_with_brute_force(
        nodes in shapes(16),
        client in (0u8..3, proptest::option::of(0u8..2)),
        cells in 1usize..12,
        seed in any::<u64>(),
    ) {
        let t = Topology::parse(&topology_text(&nodes, client), "t").unwrap();
        let d = Demand::round_robin(&t, cells, 7);
        let p = placement::random(&t, &d, seed);
        let r = check(&t, &p, true);
        let pairs = r.pairs.as_ref().unwrap();
        let rule: Vec<usize> = (0..t.domains.len())
            .filter(|&x| Level::RULE.contains(&t.domains[x].level))
            .collect();
        let in_dom = |n: usize, x: usize| t.nodes[n].domain(t.domains[x].level) == Some(x);
        let mut examined = 0;
        for (i, &a) in rule.iter().enumerate() {
            for &b in &rule[i + 1..] {
                let na = &t.domains[a].nodes;
                let nb = &t.domains[b].nodes;
                if na.iter().all(|n| nb.contains(n)) || nb.iter().all(|n| na.contains(n)) {
                    continue;
                }
                examined += 1;
                let lost: Vec<usize> = (0..p.len())
                    .filter(|&c| {
                        let m = &p.members[c];
                        let down = m.iter().filter(|&&n| in_dom(n, a) || in_dom(n, b)).count();
                        down > tolerance(m.len()) && !t.client_in(0, a) && !t.client_in(0, b)
                    })
                    .collect();
                let got = pairs.failing.iter().find(|f| (f.a, f.b) == (a, b));
                match got {
                    None => prop_assert!(lost.is_empty(), "pair {a},{b}: missed {lost:?}"),
                    Some(f) => {
                        prop_assert_eq!(f.cells_lost, lost.len());
                        prop_assert_eq!(&f.example_cells, &lost);
                    }
                }
            }
        }
        prop_assert_eq!(pairs.examined, examined);
        // Singles, by brute force too.
        for f in &r.singles {
            let x = f.domain;
            let lost: Vec<usize> = (0..p.len())
                .filter(|&c| {
                    let m = &p.members[c];
                    m.iter().filter(|&&n| in_dom(n, x)).count() > tolerance(m.len())
                        && !t.client_in(0, x)
                })
                .collect();
            prop_assert_eq!(&f.cells_lost, &lost);
        }
    }

    #[test]
    fn parsers_never_panic(text in "\\PC{0,300}") {
        let _ = Topology::parse(&text, "t");
        let t = Topology::parse(&topology_text(&[(0, 0, 0, 0, 0)], (0, None)), "t").unwrap();
        let _ = Placement::parse_toml(&text, "p", &t);
        let _ = Placement::parse_json(&text, "p", &t);
    }

    #[test]
    fn placement_parser_never_panics_on_placement_like_text(
        ids in proptest::collection::vec("(c[0-9]{1,2}|)", 0..5),
        juries in proptest::collection::vec(proptest::collection::vec("n[0-9]{1,3}|x|n", 0..9), 0..5),
        version in -2i64..3,
    ) {
        let t = Topology::parse(&topology_text(&[(0, 0, 0, 0, 0), (1, 0, 1, 1, 0)], (0, None)), "t").unwrap();
        let mut s = format!("format = \"physalia-colony-placement\"\nversion = {version}\n");
        for (id, jury) in ids.iter().zip(&juries) {
            let j: Vec<String> = jury.iter().map(|n| format!("\"{n}\"")).collect();
            s += &format!("[[cell]]\nid = \"{id}\"\njury = [{}]\n", j.join(", "));
        }
        match Placement::parse_toml(&s, "p.toml", &t) {
            Ok((_, r)) => {
                let r: Resolved = r;
                prop_assert!(r.members.iter().all(|m| !m.is_empty() && m.len() <= 7));
            }
            Err(e) => prop_assert!(e.to_string().starts_with("p.toml"), "{}", e),
        }
    }
}
