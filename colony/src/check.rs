//! The placement rule and its checker: for every single-domain failure (and, where asked,
//! every pair of domains failing together) which cells lose their quorum and which clients
//! lose their cell.
//!
//! **The rule** (after the paper's "no majority in any single domain"): a cell of `k`
//! members needs a quorum of `q = ⌊k/2⌋ + 1`. For every domain `D` at the levels az, row,
//! rack and power that does **not** contain the cell's client, the members outside `D` must
//! still be a quorum: `|jury ∩ D| ≤ k − q`. For odd `k` (7, 5, 3) that is exactly "no
//! majority in `D`"; for even `k` it also forbids half. Domains containing the client are
//! exempt: their failure takes the client down too, so the cell's loss is not seen (this is
//! what lets a cell sit in its client's row, as the paper's do). Regions are not
//! constrained (a cell lives in its client's region) and colors are deployment groups, not
//! failure domains (every cell is of one color by design). A cell with no client has no
//! exempt domain.
//!
//! The checker is indexed: each cell's members are counted once per domain they touch, so
//! single failures cost `O(cells × 7 × levels)`; pairs are bitset unions over cells plus
//! the pairs of domains one cell touches together (`O(cells × 7² × levels²)` and
//! `O(pairs × cells / 64)`).

use std::collections::HashMap;

use crate::bitset::Bitset;
use crate::placement::Resolved;
use crate::topology::{DomainIx, Level, Topology};

/// The quorum of a jury of `k`: a majority.
pub fn quorum(k: usize) -> usize {
    k / 2 + 1
}

/// The most members of a `k`-jury one failing domain may hold and leave a quorum.
pub fn tolerance(k: usize) -> usize {
    k - quorum(k)
}

/// What one domain's failure does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainFailure {
    /// The domain.
    pub domain: DomainIx,
    /// Cells losing their quorum while their client survives (violations at rule levels).
    pub cells_lost: Vec<usize>,
    /// Clients (surviving) that lose at least one of their cells.
    pub clients_lost: Vec<usize>,
    /// Cells losing their quorum together with their client (not violations).
    pub cells_down_with_client: usize,
}

/// What a pair of domains failing together does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairFailure {
    /// The first domain.
    pub a: DomainIx,
    /// The second domain.
    pub b: DomainIx,
    /// How many cells lose their quorum while their client survives.
    pub cells_lost: usize,
    /// How many surviving clients lose a cell.
    pub clients_lost: usize,
    /// The first cells lost (at most [`PAIR_EXAMPLES`]).
    pub example_cells: Vec<usize>,
}

/// How many lost cells a pair's entry lists by name.
pub const PAIR_EXAMPLES: usize = 20;

/// The pairs part of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairsReport {
    /// Pairs of rule-level domains examined (neither contains the other).
    pub examined: usize,
    /// Pairs skipped because one domain contains the other (they fail as the larger one).
    pub nested: usize,
    /// Pairs that take at least one cell's quorum, worst first.
    pub failing: Vec<PairFailure>,
    /// Cells that some pair takes.
    pub cells_ever_lost: usize,
}

/// The result of checking a placement against a topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Every domain at every level (regions and colors included, for the blast radius), in
    /// the topology's order.
    pub singles: Vec<DomainFailure>,
    /// Pairs, if asked for.
    pub pairs: Option<PairsReport>,
}

impl CheckReport {
    /// The single failures that break the rule: a rule-level domain whose failure takes a
    /// quorum from a cell whose client survives.
    pub fn violations<'a>(
        &'a self,
        topo: &'a Topology,
    ) -> impl Iterator<Item = &'a DomainFailure> + 'a {
        self.singles.iter().filter(move |f| {
            !f.cells_lost.is_empty() && Level::RULE.contains(&topo.domains[f.domain].level)
        })
    }

    /// The cells that break the rule, ascending.
    pub fn violating_cells(&self, topo: &Topology) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .violations(topo)
            .flat_map(|f| f.cells_lost.iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Per cell, the domains it touches at the given levels and the members in each (as a
/// bit mask over the cell's member positions).
pub(crate) fn touched(
    topo: &Topology,
    members: &[usize],
    levels: &[Level],
    out: &mut Vec<(DomainIx, u8)>,
) {
    out.clear();
    for (pos, &n) in members.iter().enumerate() {
        for &level in levels {
            if let Some(d) = topo.nodes[n].domain(level) {
                match out.iter_mut().find(|(x, _)| *x == d) {
                    Some((_, m)) => *m |= 1 << pos,
                    None => out.push((d, 1 << pos)),
                }
            }
        }
    }
}

fn client_in(topo: &Topology, client: Option<usize>, d: DomainIx) -> bool {
    client.is_some_and(|c| topo.client_in(c, d))
}

/// Checks `placement` against `topo`: single-domain failures always, pairs if `pairs`.
pub fn check(topo: &Topology, placement: &Resolved, pairs: bool) -> CheckReport {
    let nd = topo.domains.len();
    let mut lost: Vec<Vec<usize>> = vec![Vec::new(); nd];
    let mut with_client = vec![0usize; nd];
    let mut buf = Vec::new();
    for (c, members) in placement.members.iter().enumerate() {
        let t = tolerance(members.len());
        touched(topo, members, &Level::ALL, &mut buf);
        for &(d, mask) in &buf {
            if mask.count_ones() as usize > t {
                if client_in(topo, placement.client[c], d) {
                    with_client[d] += 1;
                } else {
                    lost[d].push(c);
                }
            }
        }
    }
    let mut stamp = vec![usize::MAX; topo.clients.len()];
    let singles = (0..nd)
        .map(|d| {
            let mut clients = Vec::new();
            for &c in &lost[d] {
                if let Some(cl) = placement.client[c] {
                    if stamp[cl] != d {
                        stamp[cl] = d;
                        clients.push(cl);
                    }
                }
            }
            clients.sort_unstable();
            DomainFailure {
                domain: d,
                cells_lost: std::mem::take(&mut lost[d]),
                clients_lost: clients,
                cells_down_with_client: with_client[d],
            }
        })
        .collect::<Vec<_>>();
    let pairs = pairs.then(|| check_pairs(topo, placement, &singles));
    CheckReport { singles, pairs }
}

/// The cells that only two rule domains together take (each alone leaves a quorum, the
/// client is in neither), keyed by the pair's positions in the rule-domain list.
fn joint_losses(
    topo: &Topology,
    placement: &Resolved,
    slot: &[usize],
) -> HashMap<(usize, usize), Vec<usize>> {
    let mut joint: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    let mut buf = Vec::new();
    for (c, members) in placement.members.iter().enumerate() {
        let t = tolerance(members.len());
        touched(topo, members, &Level::RULE, &mut buf);
        for i in 0..buf.len() {
            let (a, ma) = buf[i];
            if ma.count_ones() as usize > t || client_in(topo, placement.client[c], a) {
                continue;
            }
            for &(b, mb) in &buf[i + 1..] {
                if mb.count_ones() as usize > t || client_in(topo, placement.client[c], b) {
                    continue;
                }
                if (ma | mb).count_ones() as usize > t {
                    let (x, y) = (slot[a].min(slot[b]), slot[a].max(slot[b]));
                    joint.entry((x, y)).or_default().push(c);
                }
            }
        }
    }
    joint
}

fn check_pairs(topo: &Topology, placement: &Resolved, singles: &[DomainFailure]) -> PairsReport {
    let cells = placement.len();
    let rule: Vec<DomainIx> = (0..topo.domains.len())
        .filter(|&d| Level::RULE.contains(&topo.domains[d].level))
        .collect();
    let mut slot = vec![usize::MAX; topo.domains.len()];
    for (i, &d) in rule.iter().enumerate() {
        slot[d] = i;
    }
    // Per rule domain: the cells it takes alone (client alive) and the cells whose client
    // it contains; its nodes, for the nesting test.
    let lost: Vec<Bitset> = rule
        .iter()
        .map(|&d| Bitset::from_indices(cells, &singles[d].cells_lost))
        .collect();
    let mut client_cells: Vec<Bitset> = rule.iter().map(|_| Bitset::new(cells)).collect();
    for (c, cl) in placement.client.iter().enumerate() {
        if let Some(cl) = *cl {
            for d in topo.clients[cl].domains.iter().flatten() {
                if slot[*d] != usize::MAX {
                    client_cells[slot[*d]].set(c);
                }
            }
        }
    }
    let node_sets: Vec<Bitset> = rule
        .iter()
        .map(|&d| Bitset::from_indices(topo.nodes.len(), &topo.domains[d].nodes))
        .collect();
    let joint = joint_losses(topo, placement, &slot);
    let mut report = PairsReport {
        examined: 0,
        nested: 0,
        failing: Vec::new(),
        cells_ever_lost: 0,
    };
    let mut ever = Bitset::new(cells);
    let mut set = Bitset::new(cells);
    let mut stamp = vec![usize::MAX; topo.clients.len()];
    let mut pair_no = 0usize;
    for x in 0..rule.len() {
        for y in x + 1..rule.len() {
            if node_sets[x].is_subset(&node_sets[y]) || node_sets[y].is_subset(&node_sets[x]) {
                report.nested += 1;
                continue;
            }
            report.examined += 1;
            pair_no += 1;
            set.assign_and_not(&lost[x], &client_cells[y]);
            set.or_and_not(&lost[y], &client_cells[x]);
            if let Some(extra) = joint.get(&(x, y)) {
                for &c in extra {
                    set.set(c);
                }
            }
            let count = set.count();
            if count == 0 {
                continue;
            }
            ever.or(&set);
            let mut clients = 0;
            let mut examples = Vec::new();
            for c in set.iter() {
                if examples.len() < PAIR_EXAMPLES {
                    examples.push(c);
                }
                if let Some(cl) = placement.client[c] {
                    if stamp[cl] != pair_no {
                        stamp[cl] = pair_no;
                        clients += 1;
                    }
                }
            }
            report.failing.push(PairFailure {
                a: rule[x],
                b: rule[y],
                cells_lost: count,
                clients_lost: clients,
                example_cells: examples,
            });
        }
    }
    report.failing.sort_by(|p, q| {
        q.cells_lost
            .cmp(&p.cells_lost)
            .then((p.a, p.b).cmp(&(q.a, q.b)))
    });
    report.cells_ever_lost = ever.count();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    #[test]
    fn tolerance_is_what_a_failure_may_take() {
        assert_eq!((quorum(7), tolerance(7)), (4, 3));
        assert_eq!((quorum(6), tolerance(6)), (4, 2));
        assert_eq!((quorum(5), tolerance(5)), (3, 2));
        assert_eq!((quorum(1), tolerance(1)), (1, 0));
    }

    fn topo() -> Topology {
        // 3 AZs x 2 racks x 2 nodes; client x in az a1.
        let mut s = String::new();
        let mut id = 0;
        for az in 1..=3 {
            for rack in 1..=2 {
                for _ in 0..2 {
                    s += &format!(
                        "[[node]]\nid = \"n{id}\"\nregion = \"r\"\naz = \"a{az}\"\nrack = \"a{az}k{rack}\"\n"
                    );
                    id += 1;
                }
            }
        }
        s += "[[client]]\nid = \"x\"\nregion = \"r\"\naz = \"a1\"\n";
        Topology::parse(&s, "t").unwrap()
    }

    fn by_name(t: &Topology, level: Level, name: &str) -> DomainIx {
        t.domains_at(level)
            .find(|&d| t.domains[d].name == name)
            .unwrap()
    }

    #[test]
    fn single_failures_exempt_the_clients_domain() {
        let t = topo();
        // Cell 0: 4 members in a1 (the client's AZ) + 1 each elsewhere: a1 is exempt, but
        // rack a1k1 (2 members) and a1k2 (2) are fine too. Cell 1: 3 in a2 of 5: a2 holds a
        // majority and the client survives it.
        let p = Resolved {
            members: vec![vec![0, 1, 2, 3, 4, 8, 9], vec![0, 4, 5, 6, 8]],
            client: vec![Some(0), Some(0)],
        };
        let r = check(&t, &p, true);
        let a1 = by_name(&t, Level::Az, "a1");
        let a2 = by_name(&t, Level::Az, "a2");
        assert!(r.singles[a1].cells_lost.is_empty());
        assert_eq!(r.singles[a1].cells_down_with_client, 1);
        assert_eq!(r.singles[a2].cells_lost, vec![1]);
        assert_eq!(r.singles[a2].clients_lost, vec![0]);
        assert_eq!(r.violating_cells(&t), vec![1]);
        // Pairs: a2 + a3 takes cell 0 (1 + 2 of 7 is not > 3... 3 members: no) and cell 1.
        let pairs = r.pairs.unwrap();
        let a3 = by_name(&t, Level::Az, "a3");
        let p23 = pairs
            .failing
            .iter()
            .find(|f| (f.a, f.b) == (a2.min(a3), a2.max(a3)))
            .unwrap();
        assert_eq!(p23.example_cells, vec![1]);
        // Racks a1k1 + a1k2 together are the whole of a1: nested in a1? No: each rack is
        // nested in a1, but the pair is not; it holds 4 of cell 0's 7, client survives.
        let k11 = by_name(&t, Level::Rack, "a1k1");
        let k12 = by_name(&t, Level::Rack, "a1k2");
        let racks = pairs
            .failing
            .iter()
            .find(|f| (f.a, f.b) == (k11.min(k12), k11.max(k12)))
            .unwrap();
        assert!(racks.example_cells.contains(&0));
        assert!(pairs.nested > 0);
    }
}
