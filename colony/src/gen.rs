//! A seeded, deterministic generator of large topologies (`physalia colony gen-topology`).
//!
//! The shape: `regions × azs × rows × racks × nodes_per_rack` nodes, numbered in that
//! order (as hosts are racked: consecutive ids share a rack, which is why a rotation over
//! sorted ids is a poor placement). Each AZ has `power` power domains; the racks of a row
//! take consecutive power domains from a seeded offset, so a row spans
//! `min(racks, power)` of them and a power domain feeds racks of several rows. Colors
//! are dealt round-robin inside each rack from a seeded offset, so every rack holds every
//! color. Clients sit in seeded random rows. The same parameters and seed give the same
//! file, byte for byte.

use std::fmt::Write;

use crate::rng::Rng;

/// Parameters of a generated topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenParams {
    /// Regions.
    pub regions: u32,
    /// AZs per region.
    pub azs: u32,
    /// Rows per AZ.
    pub rows: u32,
    /// Racks per row.
    pub racks: u32,
    /// Nodes per rack.
    pub nodes_per_rack: u32,
    /// Power domains per AZ.
    pub power: u32,
    /// Colors.
    pub colors: u32,
    /// Clients.
    pub clients: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for GenParams {
    /// 1 region, 3 AZs, 4 rows per AZ, 7 racks per row, 12 nodes per rack (1,008 nodes),
    /// 6 power domains per AZ, 3 colors, 1,000 clients, seed 1.
    fn default() -> Self {
        GenParams {
            regions: 1,
            azs: 3,
            rows: 4,
            racks: 7,
            nodes_per_rack: 12,
            power: 6,
            colors: 3,
            clients: 1_000,
            seed: 1,
        }
    }
}

const COLORS: [&str; 8] = [
    "red", "green", "blue", "amber", "violet", "cyan", "grey", "white",
];

fn color_name(i: u32) -> String {
    match COLORS.get(i as usize) {
        Some(c) => c.to_string(),
        None => format!("color{i}"),
    }
}

impl GenParams {
    /// The number of nodes.
    pub fn nodes(&self) -> u64 {
        u64::from(self.regions)
            * u64::from(self.azs)
            * u64::from(self.rows)
            * u64::from(self.racks)
            * u64::from(self.nodes_per_rack)
    }

    /// The command line that generates this topology.
    pub fn command(&self) -> String {
        format!(
            "physalia colony gen-topology --regions {} --azs {} --rows {} --racks {} \
             --nodes-per-rack {} --power {} --colors {} --clients {} --seed {}",
            self.regions,
            self.azs,
            self.rows,
            self.racks,
            self.nodes_per_rack,
            self.power,
            self.colors,
            self.clients,
            self.seed
        )
    }

    /// Checks the parameters: every count at least 1 (clients may be 0), at most
    /// 1,000,000 nodes.
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            ("regions", self.regions),
            ("azs", self.azs),
            ("rows", self.rows),
            ("racks", self.racks),
            ("nodes-per-rack", self.nodes_per_rack),
            ("power", self.power),
            ("colors", self.colors),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
            return Err(format!("--{name} must be at least 1"));
        }
        if self.nodes() > 1_000_000 {
            return Err(format!(
                "{} nodes: at most 1,000,000 are generated",
                self.nodes()
            ));
        }
        if self.clients > 1_000_000 {
            return Err("--clients: at most 1,000,000".into());
        }
        Ok(())
    }

    /// The topology file's text.
    pub fn generate(&self) -> Result<String, String> {
        self.validate()?;
        let mut rng = Rng::derived(self.seed, 0x746f_706f);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# A generated colony topology: {} nodes.\n# Reproduce with: {}\n",
            self.nodes(),
            self.command()
        );
        let _ = writeln!(
            out,
            "name = \"generated-{}\"\ndescription = \"{} regions x {} AZs x {} rows x {} racks x {} nodes, {} power domains per AZ, {} colors\"\n",
            self.seed, self.regions, self.azs, self.rows, self.racks, self.nodes_per_rack, self.power, self.colors
        );
        let mut id = 0u64;
        for r in 1..=self.regions {
            for a in 1..=self.azs {
                let az = format!("r{r}-az{a}");
                for w in 1..=self.rows {
                    let row = format!("{az}-row{w}");
                    let power_offset = rng.below(self.power as usize) as u32;
                    for k in 1..=self.racks {
                        let rack = format!("{row}-k{k}");
                        let power = format!("{az}-pwr{}", (power_offset + k - 1) % self.power + 1);
                        let color_offset = rng.below(self.colors as usize) as u32;
                        for i in 0..self.nodes_per_rack {
                            let color = color_name((color_offset + i) % self.colors);
                            let _ = writeln!(
                                out,
                                "[[node]]\nid = \"n{id}\"\nregion = \"r{r}\"\naz = \"{az}\"\nrow = \"{row}\"\nrack = \"{rack}\"\npower = \"{power}\"\ncolor = \"{color}\"\n"
                            );
                            id += 1;
                        }
                    }
                }
            }
        }
        for c in 0..self.clients {
            let r = 1 + rng.below(self.regions as usize);
            let a = 1 + rng.below(self.azs as usize);
            let w = 1 + rng.below(self.rows as usize);
            let _ = writeln!(
                out,
                "[[client]]\nid = \"client-{c:05}\"\nregion = \"r{r}\"\naz = \"r{r}-az{a}\"\nrow = \"r{r}-az{a}-row{w}\"\n"
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Level, Topology};

    #[test]
    fn generates_a_valid_deterministic_topology() {
        let p = GenParams {
            clients: 20,
            ..GenParams::default()
        };
        let a = p.generate().unwrap();
        assert_eq!(a, p.generate().unwrap());
        let other = GenParams {
            seed: 2,
            ..p.clone()
        }
        .generate()
        .unwrap();
        assert_ne!(a, other);
        let t = Topology::parse(&a, "gen").unwrap();
        assert_eq!(t.nodes.len(), 1008);
        assert_eq!(t.domains_at(Level::Rack).count(), 84);
        assert_eq!(t.domains_at(Level::Power).count(), 18);
        assert_eq!(t.domains_at(Level::Color).count(), 3);
        assert_eq!(t.clients.len(), 20);
    }

    #[test]
    fn rejects_zero_counts() {
        let p = GenParams {
            racks: 0,
            ..GenParams::default()
        };
        assert!(p.generate().unwrap_err().contains("--racks"));
    }
}
