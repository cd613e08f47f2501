//! The failure model and what it implies for a cell: the exact probability that a cell
//! has lost its quorum while its client is up, and the second-order approximation of it
//! that the swap heuristic optimises.
//!
//! **Failure model.** Every node and every domain at the levels region, az, row, rack and
//! power fails independently; a unit of level `L` alternates between up (exponential, mean
//! `mttf`) and down (exponential, mean `mttr`), so at a random time it is down with
//! probability `p_L = mttr / (mttf + mttr)`. A node is up when it and all its domains are.
//! Colors do not fail at random: a color is a deployment group, and deployments go one
//! color at a time (their blast radius is reported, not folded into probabilities). A
//! client is up when its domains are (its own host is independent of its cells and cancels
//! out of the conditional probability).

use serde::Serialize;

use crate::check::{quorum, tolerance, touched};
use crate::topology::{DomainIx, Level, Topology};

/// The failure and repair of one kind of unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate {
    /// Mean time to failure, hours.
    pub mttf_hours: f64,
    /// Mean time to repair, hours.
    pub mttr_hours: f64,
}

impl Rate {
    /// The probability of being down at a random time.
    pub fn unavailability(&self) -> f64 {
        self.mttr_hours / (self.mttf_hours + self.mttr_hours)
    }
}

/// Per kind of unit, its failure and repair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FailureModel {
    /// One node.
    pub node: Rate,
    /// A rack.
    pub rack: Rate,
    /// A power domain.
    pub power: Rate,
    /// A row.
    pub row: Rate,
    /// An AZ.
    pub az: Rate,
    /// A region.
    pub region: Rate,
}

impl Default for FailureModel {
    /// The stated rates every figure of the colony uses: a node fails about monthly and
    /// is back in an hour; a rack and a power domain yearly (2 h and 1 h to repair); a row
    /// every 5 years (4 h), an AZ every 10 years (6 h), a region every 100 years (12 h).
    fn default() -> Self {
        let r = |mttf_hours, mttr_hours| Rate {
            mttf_hours,
            mttr_hours,
        };
        FailureModel {
            node: r(720.0, 1.0),
            rack: r(8_760.0, 2.0),
            power: r(8_760.0, 1.0),
            row: r(43_800.0, 4.0),
            az: r(87_600.0, 6.0),
            region: r(876_000.0, 12.0),
        }
    }
}

/// The levels whose domains fail at random, widest first (then the node itself).
pub const FAILING_LEVELS: [Level; 5] = [
    Level::Region,
    Level::Az,
    Level::Row,
    Level::Rack,
    Level::Power,
];

impl FailureModel {
    /// The rate of a domain level (`None` for colors, which do not fail at random).
    pub fn level(&self, level: Level) -> Option<Rate> {
        match level {
            Level::Region => Some(self.region),
            Level::Az => Some(self.az),
            Level::Row => Some(self.row),
            Level::Rack => Some(self.rack),
            Level::Power => Some(self.power),
            Level::Color => None,
        }
    }

    /// `p` of a domain level (0 for colors).
    pub fn p(&self, level: Level) -> f64 {
        self.level(level).map_or(0.0, |r| r.unavailability())
    }
}

/// The units (nodes and domains) a cell depends on that may fail without its client: each
/// with the mask of the members it takes down and its probability of being down.
fn units(
    topo: &Topology,
    model: &FailureModel,
    members: &[usize],
    client: Option<usize>,
    buf: &mut Vec<(DomainIx, u8)>,
    out: &mut Vec<(u8, f64)>,
) {
    out.clear();
    let p_node = model.node.unavailability();
    for pos in 0..members.len() {
        out.push((1 << pos, p_node));
    }
    touched(topo, members, &FAILING_LEVELS, buf);
    for &(d, mask) in buf.iter() {
        if client.is_some_and(|c| topo.client_in(c, d)) {
            continue;
        }
        out.push((mask, model.p(topo.domains[d].level)));
    }
}

/// The second-order objective of one cell: the probability, to second order in the
/// per-unit probabilities, that the cell has lost its quorum while its client is up:
/// `Σ_u p_u·[u alone takes the quorum] + Σ_{u<v} p_u·p_v·[u and v together do, neither
/// alone]` over the nodes and domains that do not contain the client.
pub fn cell_objective(
    topo: &Topology,
    model: &FailureModel,
    members: &[usize],
    client: Option<usize>,
    scratch: &mut Scratch,
) -> f64 {
    let t = tolerance(members.len()) as u32;
    units(
        topo,
        model,
        members,
        client,
        &mut scratch.touched,
        &mut scratch.units,
    );
    let u = &scratch.units;
    let mut first = 0.0;
    let mut second = 0.0;
    for i in 0..u.len() {
        let (mi, pi) = u[i];
        if mi.count_ones() > t {
            first += pi;
            continue;
        }
        for &(mj, pj) in &u[i + 1..] {
            if mj.count_ones() <= t && (mi | mj).count_ones() > t {
                second += pi * pj;
            }
        }
    }
    first + second
}

/// Reusable buffers for the per-cell computations.
#[derive(Default, Debug)]
pub struct Scratch {
    touched: Vec<(DomainIx, u8)>,
    units: Vec<(u8, f64)>,
}

/// Distribution of the number of members up: index = count (at most 7).
type Dist = [f64; 8];

fn convolve(a: &Dist, b: &Dist) -> Dist {
    let mut out = [0.0; 8];
    for (i, &x) in a.iter().enumerate() {
        if x == 0.0 {
            continue;
        }
        for (j, &y) in b.iter().enumerate().take(8 - i) {
            out[i + j] += x * y;
        }
    }
    out
}

const DELTA0: Dist = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];

/// The exact probability that the cell has lost its quorum given that its client is up,
/// under the independent failure model. Conditions on the states of the cell's power
/// domains (at most 7, so at most 128 states) and, for each, computes the distribution of
/// members up by a product over the tree region → az → row → rack → node.
pub fn cell_unavailability(
    topo: &Topology,
    model: &FailureModel,
    members: &[usize],
    client: Option<usize>,
) -> f64 {
    let k = members.len();
    let q = quorum(k);
    let tree: Vec<Level> = [Level::Region, Level::Az, Level::Row, Level::Rack]
        .into_iter()
        .filter(|&l| topo.has_level(l))
        .collect();
    let forced = |d: DomainIx| client.is_some_and(|c| topo.client_in(c, d));
    // The cell's power domains that may fail (not the client's).
    let mut powers: Vec<DomainIx> = Vec::new();
    let mut power_of = [usize::MAX; 8];
    if topo.has_level(Level::Power) {
        for (pos, &n) in members.iter().enumerate() {
            if let Some(d) = topo.nodes[n].domain(Level::Power) {
                if forced(d) {
                    continue;
                }
                let i = match powers.iter().position(|&x| x == d) {
                    Some(i) => i,
                    None => {
                        powers.push(d);
                        powers.len() - 1
                    }
                };
                power_of[pos] = i;
            }
        }
    }
    let p_power = model.power.unavailability();
    let p_node = model.node.unavailability();
    // Members in tree order, so that every domain's members are contiguous.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&pos| {
        tree.iter()
            .map(|&l| topo.nodes[members[pos]].domain(l))
            .collect::<Vec<_>>()
    });
    let mut total = 0.0;
    for state in 0u32..(1 << powers.len()) {
        let down = state.count_ones() as i32;
        let p_state = p_power.powi(down) * (1.0 - p_power).powi(powers.len() as i32 - down);
        let leaf = |pos: usize| -> Dist {
            let i = power_of[pos];
            if i != usize::MAX && state & (1 << i) != 0 {
                DELTA0
            } else {
                let mut d = [0.0; 8];
                d[0] = p_node;
                d[1] = 1.0 - p_node;
                d
            }
        };
        let dist = subtree(topo, model, members, &order, &tree, 0, &leaf, &forced);
        let lost: f64 = dist[..q].iter().sum();
        total += p_state * lost;
    }
    total
}

#[allow(clippy::too_many_arguments)]
fn subtree(
    topo: &Topology,
    model: &FailureModel,
    members: &[usize],
    group: &[usize],
    tree: &[Level],
    depth: usize,
    leaf: &dyn Fn(usize) -> Dist,
    forced: &dyn Fn(DomainIx) -> bool,
) -> Dist {
    let mut acc = [0.0; 8];
    acc[0] = 1.0;
    if depth == tree.len() {
        for &pos in group {
            acc = convolve(&acc, &leaf(pos));
        }
        return acc;
    }
    let level = tree[depth];
    let p = model.p(level);
    let mut i = 0;
    while i < group.len() {
        let d = topo.nodes[members[group[i]]].domain(level);
        let mut j = i + 1;
        while j < group.len() && topo.nodes[members[group[j]]].domain(level) == d {
            j += 1;
        }
        let mut child = subtree(
            topo,
            model,
            members,
            &group[i..j],
            tree,
            depth + 1,
            leaf,
            forced,
        );
        if let Some(d) = d {
            if !forced(d) {
                for x in child.iter_mut() {
                    *x *= 1.0 - p;
                }
                child[0] += p;
            }
        }
        acc = convolve(&acc, &child);
        i = j;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(n: usize) -> Topology {
        let mut s = String::new();
        for i in 0..n {
            s += &format!(
                "[[node]]\nid = \"n{i}\"\nregion = \"r\"\naz = \"a{}\"\nrack = \"k{i}\"\npower = \"p{i}\"\n",
                i % 3
            );
        }
        Topology::parse(&s, "t").unwrap()
    }

    #[test]
    fn exact_matches_a_brute_force_enumeration() {
        // 7 nodes, 3 AZs, one rack and power domain each: enumerate all 2^(7+7+7+3+1)
        // states would be too many; instead compare with a hand computation where only
        // nodes fail (every domain rate zero).
        let t = flat(7);
        let zero = Rate {
            mttf_hours: 1.0,
            mttr_hours: 0.0,
        };
        let node = Rate {
            mttf_hours: 9.0,
            mttr_hours: 1.0,
        };
        let m = FailureModel {
            node,
            rack: zero,
            power: zero,
            row: zero,
            az: zero,
            region: zero,
        };
        let members: Vec<usize> = (0..7).collect();
        let p: f64 = 0.1;
        // P(at most 3 of 7 up) = P(at least 4 down).
        let mut want = 0.0;
        for down in 4..=7u32 {
            let c = (0..down).fold(1.0, |acc, i| acc * f64::from(7 - i) / f64::from(i + 1));
            want += c * p.powi(down as i32) * (1.0 - p).powi(7 - down as i32);
        }
        let got = cell_unavailability(&t, &m, &members, None);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn one_domain_with_a_majority_costs_its_probability() {
        // Members 0, 3, 6 and 1, 4, 7... all in a0/a1: with only AZs failing, a 4-member
        // AZ makes the cell as unavailable as that AZ (plus both other AZs together).
        let t = flat(9);
        let zero = Rate {
            mttf_hours: 1.0,
            mttr_hours: 0.0,
        };
        let az = Rate {
            mttf_hours: 99.0,
            mttr_hours: 1.0,
        };
        let m = FailureModel {
            node: zero,
            rack: zero,
            power: zero,
            row: zero,
            az,
            region: zero,
        };
        // a0 holds n0,n3,n6 ; a1 n1,n4,n7 ; a2 n2,n5,n8. Jury: n0 n3 n6 n1 n4 n7 n2 → 3/3/1.
        let members = vec![0, 1, 2, 3, 4, 6, 7];
        let p = 0.01;
        // Lost iff a0 and a1 both down (3+3 ≥ 4), or a0+a2 (4), a1+a2 (4): any two AZs.
        let want = 3.0 * p * p * (1.0 - p) + p * p * p;
        let got = cell_unavailability(&t, &m, &members, None);
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        let mut s = Scratch::default();
        let approx = cell_objective(&t, &m, &members, None, &mut s);
        assert!((approx - 3.0 * p * p).abs() < 1e-15, "{approx}");
    }
}
