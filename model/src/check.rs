//! Running the stateright checker on a [`CellModel`], with the work-arounds stateright 0.31
//! needs (each pinned by a test in `tests/pitfalls.rs`):
//!
//! - **BFS may not return the shortest counterexample**: a discovery is overwritten by later
//!   ones, even with `finish_when`, because BFS checks whole blocks of states before it looks
//!   at the finish condition (measured: a 3-step violation reported as 6 steps). We stop at
//!   the first `always` violation (`finish_when(AnyFailures)`) and then, for BFS, find the
//!   shortest counterexample with bounded BFS probes below the best path so far: a BFS
//!   bounded at `k` steps finds a violation iff one exists within `k` steps, so the first
//!   bound with none proves the best path shortest ([`shortest_violation`]).
//! - **BFS ignores `.symmetry()`**: [`run`] refuses BFS with symmetry instead of silently
//!   checking the full space.
//! - **`eventually` misses violations** on cycles and at depth cut-offs: the model has no
//!   `eventually` property; liveness is checked by TLC (`tla/`) and, on traces, by the
//!   refinement layer.
//! - **`.timeout()` is ignored with one thread** and a timed-out run reports itself done:
//!   we offer no time limit, so a finished run is always a complete one (or stopped at a
//!   violation, which [`CheckReport::stopped_early`] says).
//! - **Simulation records wrong action indices after a no-op action**: the model is not
//!   offered to the simulation checker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stateright::{Checker, CheckerBuilder, Expectation, HasDiscoveries, Model, Path, Property};

use crate::config::CellConfig;
use crate::model::{Action, CellModel};
use crate::state::CellState;
use crate::symmetry;

/// The search strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth-first: shortest counterexamples (with one thread), more memory.
    Bfs,
    /// Depth-first: little memory (a fingerprint per state), supports symmetry.
    Dfs,
}

/// How to run the checker.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Search strategy.
    pub strategy: Strategy,
    /// Worker threads.
    pub threads: usize,
    /// Whether to prune states equivalent under node renaming (DFS only).
    pub symmetry: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            strategy: Strategy::Bfs,
            threads: 1,
            symmetry: false,
        }
    }
}

/// A snapshot of a running check.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States generated, repeats included.
    pub generated: usize,
    /// Distinct states.
    pub unique: usize,
    /// Deepest path so far.
    pub depth: usize,
    /// Time since the start.
    pub elapsed: Duration,
}

/// The verdict on one property.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// `always`: no reachable state violates it.
    Holds,
    /// `always`: this path reaches a state that violates it.
    Violated(Path<CellState, Action>),
    /// `sometimes`: this path reaches a state that satisfies it.
    Reached(Path<CellState, Action>),
    /// `sometimes`: no reachable state satisfies it.
    Unreached,
    /// The search stopped at another property's violation before deciding this one.
    Undecided,
    /// `sometimes`: the bounds rule it out (e.g. no crash allowed), so it is not asked for.
    NotApplicable,
}

impl Verdict {
    /// Whether this verdict is a failure of the model.
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Violated(_) | Verdict::Unreached)
    }
}

/// One property and its verdict.
#[derive(Clone, Debug)]
pub struct PropertyResult {
    /// The property's name.
    pub name: &'static str,
    /// `Always` or `Sometimes`.
    pub expectation: Expectation,
    /// What the checker found.
    pub verdict: Verdict,
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The final figures.
    pub stats: Progress,
    /// Whether the search stopped at a violation instead of exhausting the state space.
    pub stopped_early: bool,
    /// Every property of the model with its verdict.
    pub properties: Vec<PropertyResult>,
}

impl CheckReport {
    /// Whether any property failed.
    pub fn failed(&self) -> bool {
        self.properties.iter().any(|p| p.verdict.is_failure())
    }

    /// The names of the violated `always` properties.
    pub fn violations(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| matches!(p.verdict, Verdict::Violated(_)))
            .map(|p| p.name)
            .collect()
    }
}

/// Whether the bounds of `cfg` allow a `sometimes` witness at all: a restart needs a crash,
/// a re-proposal an election, a failed condition two clients, a change in force a change
/// (with a spare, unless removals are allowed) and a slot α after it.
pub fn applicable(cfg: &CellConfig, name: &str) -> bool {
    use crate::properties as p;
    let ops = cfg.clients > 0 && cfg.ops_per_client > 0;
    match name {
        p::COMMIT_AFTER_RESTART => ops && cfg.max_crashes > 0,
        p::REPROPOSED => ops && cfg.max_elections > 0,
        p::CONDITION_FAILED => cfg.clients > 1,
        // A change chosen at slot i is in force at i + α, which must be a slot of the log;
        // a move or an addition needs a spare to move to.
        p::CHANGE_IN_FORCE => {
            cfg.reconfigs > 0
                && cfg.max_slots > cfg.window
                && (cfg.changes.remove || cfg.spares > 0)
        }
        _ => ops,
    }
}

/// A shorter path (in actions) that violates the `always` property `name` than the `known`
/// actions of one BFS reported, if there is one: the shortest. Each probe is a
/// single-threaded BFS bounded at `k` actions, which finds a violation iff one exists within
/// `k` actions; probing below the best path found so far until a probe finds none gives a
/// shortest one. (BFS's report is rarely more than a few steps too long, so this costs about
/// one more search to the shortest depth; a binary search from zero would cost several.)
pub fn shortest_violation(
    model: CellModel,
    name: &'static str,
    known: usize,
) -> Option<Path<CellState, Action>> {
    let probe = |k: usize| {
        model
            .clone()
            .checker()
            .target_max_depth(k + 2) // depth counts states; the initial state is depth 1
            .finish_when(HasDiscoveries::AnyOf([name].into_iter().collect()))
            .spawn_bfs()
            .join()
            .discovery(name)
    };
    let mut best = None;
    let mut bound = known;
    while bound > 0 {
        match probe(bound - 1) {
            Some(path) => {
                bound = path.clone().into_actions().len();
                best = Some(path);
            }
            None => break,
        }
    }
    best
}

/// Checks `model` exhaustively (within its bounds), calling `progress` about once a second.
/// Stops at the first `always` violation.
pub fn run(
    model: CellModel,
    opts: &CheckOptions,
    mut progress: impl FnMut(Progress),
) -> Result<CheckReport, String> {
    validate(opts)?;
    let properties = model.properties();
    let cfg = model.cfg.clone();
    let builder = builder(model, opts);
    let start = Instant::now();
    let checker: Box<dyn Checker<CellModel>> = match opts.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    wait(checker.as_ref(), start, &mut progress);
    let mut checker = checker;
    for h in checker.handles() {
        h.join()
            .map_err(|_| "a checker thread panicked".to_string())?;
    }
    let stats = snapshot(checker.as_ref(), start);
    let mut discoveries = checker.discoveries();
    let stopped_early = properties
        .iter()
        .any(|p| p.expectation == Expectation::Always && discoveries.contains_key(p.name));
    if opts.strategy == Strategy::Bfs {
        shorten_violations(checker.model(), &properties, &mut discoveries);
    }
    Ok(CheckReport {
        stats,
        stopped_early,
        properties: verdicts(&properties, &discoveries, &cfg, stopped_early),
    })
}

/// Refuses the options stateright 0.31 would not honour: symmetry with BFS (which ignores
/// it), and no thread at all.
fn validate(opts: &CheckOptions) -> Result<(), String> {
    if opts.symmetry && opts.strategy == Strategy::Bfs {
        return Err(
            "symmetry reduction needs --strategy dfs: stateright 0.31's BFS ignores \
                    it and would silently check the full state space"
                .into(),
        );
    }
    if opts.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    Ok(())
}

/// The checker for `model` with `opts`: it stops at the first `always` violation, and
/// prunes symmetric states when asked.
fn builder(model: CellModel, opts: &CheckOptions) -> CheckerBuilder<CellModel> {
    let mut builder = model
        .checker()
        .threads(opts.threads)
        .finish_when(HasDiscoveries::AnyFailures);
    if opts.symmetry {
        builder = builder.symmetry_fn(symmetry::symmetry_fn());
    }
    builder
}

/// The figures of `checker` now, `start` being when it was spawned.
fn snapshot(checker: &dyn Checker<CellModel>, start: Instant) -> Progress {
    Progress {
        generated: checker.state_count(),
        unique: checker.unique_state_count(),
        depth: checker.max_depth(),
        elapsed: start.elapsed(),
    }
}

/// Waits until `checker` is done, calling `progress` about once a second.
fn wait(checker: &dyn Checker<CellModel>, start: Instant, progress: &mut impl FnMut(Progress)) {
    let mut last = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if last.elapsed() >= Duration::from_secs(1) {
            progress(snapshot(checker, start));
            last = Instant::now();
        }
    }
}

/// Replaces each `always` violation BFS found by a shortest one (see
/// [`shortest_violation`]): BFS may report a longer path than the shortest.
fn shorten_violations(
    model: &CellModel,
    properties: &[Property<CellModel>],
    discoveries: &mut HashMap<&'static str, Path<CellState, Action>>,
) {
    for p in properties {
        if p.expectation != Expectation::Always {
            continue;
        }
        if let Some(path) = discoveries.get(p.name) {
            let known = path.clone().into_actions().len();
            if let Some(shorter) = shortest_violation(model.clone(), p.name, known) {
                discoveries.insert(p.name, shorter);
            }
        }
    }
}

/// Each property's verdict from what the search discovered; when it `stopped_early` at a
/// violation, an undiscovered property is undecided (unless the bounds rule a `sometimes`
/// witness out).
fn verdicts(
    properties: &[Property<CellModel>],
    discoveries: &HashMap<&'static str, Path<CellState, Action>>,
    cfg: &CellConfig,
    stopped_early: bool,
) -> Vec<PropertyResult> {
    properties
        .iter()
        .map(|p| {
            let found = discoveries.get(p.name).cloned();
            let verdict = match (&p.expectation, found) {
                (Expectation::Always, Some(path)) => Verdict::Violated(path),
                (Expectation::Always, None) if stopped_early => Verdict::Undecided,
                (Expectation::Always, None) => Verdict::Holds,
                (_, Some(path)) => Verdict::Reached(path),
                (_, None) if !applicable(cfg, p.name) => Verdict::NotApplicable,
                (_, None) if stopped_early => Verdict::Undecided,
                (_, None) => Verdict::Unreached,
            };
            PropertyResult {
                name: p.name,
                expectation: p.expectation.clone(),
                verdict,
            }
        })
        .collect()
}
