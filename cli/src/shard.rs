//! Sharded sweeps of `physalia verify`: which seeds a shard runs, where its index comes
//! from (`--shard I/N`, or a batch engine's environment with `--shards N`), and the result
//! each shard writes for `physalia verify merge`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The schema of a shard's result.
pub const SCHEMA: &str = "physalia-verify-shard";

/// Environment variables that carry a shard index: a Kubernetes Indexed Job's and a Slurm
/// job array's (whose first index is `SLURM_ARRAY_TASK_MIN`).
pub const INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// One shard of a sweep: seeds `first + k` with `k % count == index`; shard 0 also runs the
/// model check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// How many shards the sweep has.
    pub count: u64,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Shard> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("--shard `{s}` is not I/N"))?;
        let index: u64 = i
            .trim()
            .parse()
            .with_context(|| format!("--shard `{s}`: `{i}` is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .with_context(|| format!("--shard `{s}`: `{n}` is not a number"))?;
        Shard::new(index, count)
    }

    /// Shard `index` of `count`, checked.
    pub fn new(index: u64, count: u64) -> Result<Shard> {
        if count == 0 || count > MAX_SHARDS {
            bail!("a sweep has 1 to {MAX_SHARDS} shards, not {count}");
        }
        if index >= count {
            bail!("shard index {index} is not below the shard count {count}");
        }
        Ok(Shard { index, count })
    }

    /// The shard of `count` named by the first variable of [`INDEX_VARS`] that is set, as
    /// read through `var`.
    pub fn from_env(count: u64, var: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        for name in INDEX_VARS {
            if let Some(v) = var(name) {
                let mut index: u64 = v
                    .trim()
                    .parse()
                    .with_context(|| format!("${name} is `{v}`, not a shard index"))?;
                if name == "SLURM_ARRAY_TASK_ID" {
                    if let Some(min) = var("SLURM_ARRAY_TASK_MIN") {
                        let min: u64 = min.trim().parse().context("$SLURM_ARRAY_TASK_MIN")?;
                        index = index
                            .checked_sub(min)
                            .context("$SLURM_ARRAY_TASK_ID is below $SLURM_ARRAY_TASK_MIN")?;
                    }
                }
                return Shard::new(index, count);
            }
        }
        bail!(
            "--shards {count} without --shard: none of {} is set (give --shard I/{count})",
            INDEX_VARS.map(|v| format!("${v}")).join(", ")
        )
    }

    /// The seeds of this shard, of the sweep `first..first + seeds`.
    pub fn seeds(self, first: u64, seeds: u64) -> impl Iterator<Item = u64> {
        (0..seeds)
            .filter(move |k| k % self.count == self.index)
            .map(move |k| first + k)
    }

    /// Whether this shard runs the model check (one shard does: the first).
    pub fn runs_model(self) -> bool {
        self.index == 0
    }
}

/// The most shards a sweep may have.
pub const MAX_SHARDS: u64 = 100_000;

/// What a sweep was asked to run: shards of one sweep must agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Seeds in the whole sweep.
    pub seeds: u64,
    /// The first seed.
    pub first_seed: u64,
    /// Simulator events per seed.
    pub steps: u64,
    /// Nodes in the simulated cell.
    pub nodes: u32,
    /// GST (simulated ms).
    pub gst: u64,
    /// Whether the model check was left out.
    pub skip_model: bool,
}

/// A row's figures, as a shard measured them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Runs.
    pub runs: u64,
    /// Runs that passed.
    pub passed: u64,
    /// Seconds they took.
    pub seconds: f64,
}

/// One failure, with the seed it belongs to (`None`: the model check), so that merged
/// failures come in the order of a single run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The seed.
    pub seed: Option<u64>,
    /// What failed, and how to reproduce it.
    pub text: String,
}

/// What one shard found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    /// [`SCHEMA`].
    pub schema: String,
    /// The version of the binary that ran it.
    pub tool_version: String,
    /// Which shard.
    pub shard: Shard,
    /// The sweep.
    pub sweep: Sweep,
    /// The model check's row and its note (the first shard, unless skipped).
    pub model: Option<(Counts, String)>,
    /// Simulation (online checks), conformance, linearizability, liveness.
    pub rows: [Counts; 4],
    /// Trace events replayed.
    pub events: usize,
    /// Client operations checked for linearizability.
    pub ops: usize,
    /// Bytes of trace.
    pub bytes: usize,
    /// The seeds it ran.
    pub seeds_run: Vec<u64>,
    /// What failed.
    pub failures: Vec<Failure>,
}

/// Checks that `results` are the shards of one sweep, each exactly once, and returns them in
/// shard order.
pub fn complete(mut results: Vec<(String, ShardResult)>) -> Result<Vec<ShardResult>> {
    let Some((first_file, first)) = results.first().cloned() else {
        bail!("no shard result given");
    };
    let count = first.shard.count;
    for (file, r) in &results {
        if r.schema != SCHEMA {
            bail!("{file}: schema `{}`, not {SCHEMA}", r.schema);
        }
        Shard::new(r.shard.index, r.shard.count).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        if r.shard.count != count || r.sweep != first.sweep {
            bail!("{file} is a shard of another sweep than {first_file} (shard count or sweep differ)");
        }
        if r.tool_version != first.tool_version {
            bail!(
                "{file} was written by physalia {}, {first_file} by {}: one build per sweep",
                r.tool_version,
                first.tool_version
            );
        }
        let expected: Vec<u64> = r.shard.seeds(r.sweep.first_seed, r.sweep.seeds).collect();
        if r.seeds_run != expected {
            bail!(
                "{file}: shard {}/{count} ran other seeds than its share of the sweep",
                r.shard.index
            );
        }
    }
    results.sort_by_key(|(_, r)| r.shard.index);
    for w in results.windows(2) {
        if w[0].1.shard.index == w[1].1.shard.index {
            bail!(
                "shard {}/{count} is given twice ({} and {})",
                w[0].1.shard.index,
                w[0].0,
                w[1].0
            );
        }
    }
    let have: Vec<u64> = results.iter().map(|(_, r)| r.shard.index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .take(10)
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!("missing shard(s): {}", missing.join(", "));
    }
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_cover_every_seed_exactly_once() {
        for (first, seeds) in [
            (0u64, 0u64),
            (0, 1),
            (5, 20),
            (100, 1001),
            (u64::MAX - 10, 10),
        ] {
            for count in [1u64, 2, 3, 7, 64, 2000] {
                let mut all: Vec<u64> = (0..count)
                    .flat_map(|i| Shard::new(i, count).unwrap().seeds(first, seeds))
                    .collect();
                all.sort_unstable();
                let want: Vec<u64> = (0..seeds).map(|k| first + k).collect();
                assert_eq!(all, want, "first {first}, {seeds} seeds, {count} shards");
            }
        }
        assert_eq!(
            (0..4)
                .filter(|i| Shard::new(*i, 4).unwrap().runs_model())
                .count(),
            1
        );
    }

    #[test]
    fn shard_specs_and_engine_indices_are_checked() {
        assert_eq!(Shard::parse("1/2").unwrap(), Shard { index: 1, count: 2 });
        for bad in ["2/2", "0/0", "x/2", "1", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            Shard::from_env(4, env(&[("JOB_COMPLETION_INDEX", "3")]))
                .unwrap()
                .index,
            3
        );
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
        ]);
        assert_eq!(Shard::from_env(4, slurm).unwrap().index, 1);
        assert!(Shard::from_env(4, env(&[("JOB_COMPLETION_INDEX", "4")])).is_err());
        assert!(Shard::from_env(4, env(&[])).is_err());
    }

    fn result(index: u64, count: u64) -> ShardResult {
        let shard = Shard { index, count };
        let sweep = Sweep {
            seeds: 4,
            first_seed: 0,
            steps: 100,
            nodes: 3,
            gst: 50,
            skip_model: true,
        };
        ShardResult {
            schema: SCHEMA.into(),
            tool_version: "1".into(),
            seeds_run: shard.seeds(0, 4).collect(),
            shard,
            sweep,
            model: None,
            rows: Default::default(),
            events: 0,
            ops: 0,
            bytes: 0,
            failures: Vec::new(),
        }
    }

    #[test]
    fn only_every_shard_of_one_sweep_once_merges() {
        let named = |rs: Vec<ShardResult>| -> Vec<(String, ShardResult)> {
            rs.into_iter()
                .enumerate()
                .map(|(i, r)| (format!("f{i}"), r))
                .collect()
        };
        assert!(complete(named(vec![result(1, 2), result(0, 2)])).is_ok());
        let err = |rs| complete(named(rs)).unwrap_err().to_string();
        assert!(err(vec![result(0, 2)]).contains("missing shard(s): 1/2"));
        assert!(err(vec![result(0, 2), result(0, 2), result(1, 2)]).contains("given twice"));
        // An index past the count (a hand-edited or foreign file) is refused.
        let mut past = result(1, 2);
        past.shard.index = 2;
        assert!(err(vec![result(0, 2), result(1, 2), past]).contains("not below"));
        let mut other_build = result(1, 2);
        other_build.tool_version = "2".into();
        assert!(err(vec![result(0, 2), other_build]).contains("one build per sweep"));
        let mut other_seeds = result(1, 2);
        other_seeds.seeds_run = vec![0];
        assert!(err(vec![result(0, 2), other_seeds]).contains("other seeds"));
        let mut other_sweep = result(1, 2);
        other_sweep.sweep.steps = 7;
        assert!(err(vec![result(0, 2), other_sweep]).contains("another sweep"));
    }
}
