//! A deterministic simulator that drives the cores of one cell with a seed.
//!
//! # Fault model (what can go wrong, before the code that does it)
//!
//! Until `GST` (a logical time, [`SimConfig::gst`]):
//! - **network**: each message between nodes, or between a node and a client, is lost with
//!   probability [`Faults::drop_ppm`] (parts per million), delivered twice with probability
//!   [`Faults::duplicate_ppm`], and delayed uniformly in `[min_delay, max_delay]` ms, so
//!   messages are reordered; a partition cuts the cell in two random halves for
//!   [`Faults::partition_ms`] ms, starting with probability [`Faults::partition_ppm`] per step;
//! - **nodes**: with probability [`Faults::crash_ppm`] per step a random live node crashes
//!   (at most `(N-1)/2` down at once) and restarts after `[restart_min, restart_max]` ms;
//! - **disk**: a write batch becomes durable `[fsync_min, fsync_max]` ms after it is issued;
//!   at a crash, a random prefix of the batches not yet synced survives and the rest is lost
//!   (a torn last record is detected by its checksum and dropped with what follows);
//! - **clocks**: each node's clock runs at real rate with a constant offset in
//!   `[0, clock_skew]` ms; timers fire on the node's clock;
//! - **moves** (`reconfigure`): with probability [`Faults::reconfig_ppm`] per step, when no
//!   move is in progress, an operator asks the leader it believes in to replace a random
//!   member of the jury (the leader's own node included) by a random node outside it (one
//!   of [`SimConfig::spares`], or a node removed earlier); it retries while the node is
//!   taught or a change is in flight. A node whose removal is in force deletes its copy once
//!   a majority of the new jury has committed past the change, and hosts a fresh learner's
//!   copy from then on (it may be added back later), whose floor is the slot it left at.
//!   Moves happen during partitions and crashes like any other input.
//! - **disk loss** (`disk-loss`): with probability [`Faults::disk_loss_ppm`] per step (at
//!   most [`MAX_DISK_LOSSES`] per run) a live node crashes with its durable state gone. As
//!   the real node does (it refuses to vote from a lost state and re-enters as a new
//!   instance), it restarts with a learner's copy that knows no floor, and the operator
//!   moves it out of the jury first, before GST or after.
//!
//! From `GST` on: no more loss, duplication or partitions, crashed nodes restart, and delays
//! stay within `[min_delay, max_delay]`. The simulator records `GST` in its report.
//!
//! Every bound is stated: at most [`SimConfig::steps`] events, one operation in flight per
//! client, `max_delay` per message. Invariants are checked after every step (see
//! [`check`]); trace events go through `physalia_traces::record` (the `tracing` stack).

pub mod check;
mod faults;
mod reconfig;
mod report;
mod run;
mod workload;

pub use check::Violation;
pub use report::{HistoryEntry, Liveness, SimReport};
pub use run::{run, run_with_progress};

use crate::core::Options;

/// The faults injected before `GST`. Probabilities are in parts per million.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop_ppm: u32,
    /// Probability that a message is delivered twice.
    pub duplicate_ppm: u32,
    /// Probability, per step, that a partition starts (if none is in force).
    pub partition_ppm: u32,
    /// How long a partition lasts (ms).
    pub partition_ms: u64,
    /// Probability, per step, that a live node crashes.
    pub crash_ppm: u32,
    /// Shortest time before a crashed node restarts (ms).
    pub restart_min: u64,
    /// Longest time before a crashed node restarts (ms).
    pub restart_max: u64,
    /// Probability, per step, that the operator starts a move (if none is in progress).
    pub reconfig_ppm: u32,
    /// Probability, per step, that a live node loses its disk: it crashes and its durable
    /// state is gone (a wiped or replaced volume; a lost newest segment is the same to
    /// the node, which refuses a partial state). At most [`MAX_DISK_LOSSES`] per run.
    pub disk_loss_ppm: u32,
}

/// Most disk losses in one run: each costs the jury a voter until the operator moves the
/// node out, so more would test liveness, not safety.
pub const MAX_DISK_LOSSES: u64 = 2;

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults {
            drop_ppm: 0,
            duplicate_ppm: 0,
            partition_ppm: 0,
            partition_ms: 0,
            crash_ppm: 0,
            restart_min: 0,
            restart_max: 0,
            reconfig_ppm: 0,
            disk_loss_ppm: 0,
        }
    }

    /// Every fault, at rates that keep the cell busy but live.
    pub fn all() -> Faults {
        Faults {
            drop_ppm: 20_000,
            duplicate_ppm: 20_000,
            partition_ppm: 500,
            partition_ms: 400,
            crash_ppm: 300,
            restart_min: 100,
            restart_max: 1_000,
            reconfig_ppm: 2_000,
            disk_loss_ppm: 30,
        }
    }
}

/// One simulation run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed: the same seed gives the same run, byte for byte.
    pub seed: u64,
    /// Nodes in the cell's initial jury (`n0..`).
    pub nodes: u32,
    /// Nodes outside the initial jury that moves may add (`n<nodes>..`).
    pub spares: u32,
    /// Concurrent clients (one operation in flight each).
    pub clients: u32,
    /// Most events processed.
    pub steps: u64,
    /// Logical time (ms) after which no fault is injected.
    pub gst: u64,
    /// The faults before `GST`.
    pub faults: Faults,
    /// Shortest message delay (ms).
    pub min_delay: u64,
    /// Longest message delay (ms).
    pub max_delay: u64,
    /// Shortest fsync latency (ms).
    pub fsync_min: u64,
    /// Longest fsync latency (ms).
    pub fsync_max: u64,
    /// Largest clock offset of a node (ms).
    pub clock_skew: u64,
    /// Distinct keys the workload touches.
    pub keys: u32,
    /// A client re-sends its operation to another node after this long without reply (ms).
    pub client_retry: u64,
    /// The replicas' options (the seed in it is replaced by one derived from `seed`).
    pub options: Options,
    /// The injected bug every replica runs with (feature `bugs` only); it replaces
    /// `options.bug`.
    #[cfg(feature = "bugs")]
    pub bug: Option<crate::bugs::Bug>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            nodes: 7,
            spares: 2,
            clients: 3,
            steps: 20_000,
            gst: 5_000,
            faults: Faults::all(),
            min_delay: 1,
            max_delay: 20,
            fsync_min: 1,
            fsync_max: 5,
            clock_skew: 10,
            keys: 3,
            client_retry: 300,
            // Snapshots every 64 slots, so that a run of the default length compacts on
            // every replica and teaches lagging and restarted ones by snapshot install.
            options: Options {
                snapshot_every: 64,
                keep_folded: true,
                ..Options::default()
            },
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

/// The simulator's random numbers: splitmix64, seeded, never from the OS.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        crate::rng::splitmix64(&mut self.0)
    }

    /// Uniform in `[lo, hi]` (`lo` if `hi <= lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `ppm` parts per million.
    pub fn chance(&mut self, ppm: u32) -> bool {
        self.next_u64() % 1_000_000 < u64::from(ppm)
    }
}
