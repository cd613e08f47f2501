//! `physalia`: the workbench's command line. One subcommand per job.

mod bench;
mod check;
mod client;
mod cluster;
mod colony;
mod conform;
mod explore;
mod node;
mod progress;
mod simulate;
mod sweep;
mod tla;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Physalia workbench: a formally checked model, spec and implementation of a
/// Physalia cell (Multi-Paxos with a distinguished proposer, after Brooker et al.,
/// "Millions of Tiny Databases", NSDI 2020).
#[derive(Parser, Debug)]
#[command(name = "physalia", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Model-check the stateright specification of one cell (exhaustive within the bounds).
    ///
    /// Prints progress while it runs, then the states explored and every property's verdict.
    /// A violated `always` property (or an unreached `sometimes` one) is printed as a
    /// numbered counterexample and makes the command exit 1.
    Check(check::CheckArgs),
    /// Serve the stateright Explorer web UI on the model, to browse states step by step.
    Explore(explore::ExploreArgs),
    /// Run the implementation core in the deterministic simulator under faults, with online
    /// invariant checks (exit 1 if one fails) and optional per-node traces.
    Simulate(simulate::SimulateArgs),
    /// Check the TLA+ specification (`tla/`) with TLC: every configuration, or one, against
    /// its expected verdict.
    Tla {
        #[command(subcommand)]
        cmd: tla::TlaCommand,
    },
    /// Run one production node (many cells, WAL, authenticated TCP) until SIGTERM.
    Node(node::NodeArgs),
    /// Manage a local cluster of node processes on 127.0.0.1.
    Cluster {
        #[command(subcommand)]
        cmd: cluster::ClusterCommand,
    },
    /// Run one operation against a cluster (get, put, cas, incr, txn, read) and print JSON.
    Client(client::ClientArgs),
    /// Measure the node on loopback: commit latency, throughput, tracing cost, idle cells.
    Bench(bench::BenchArgs),
    /// Replay a recorded trace (one file, or the per-node files of one run) against the
    /// specification: every step must be one it allows, every safety property must hold on
    /// every replayed state, the client history must be linearizable, and bounded liveness
    /// must hold after GST. Exit 0: conforms; 1: does not; 2: the trace is unusable.
    Conform(conform::ConformArgs),
    /// The main job on built-in defaults: model-check the default configuration, simulate
    /// seeds of a 7-node cell under faults, replay every trace against the specification,
    /// check linearizability and bounded liveness, and print a summary table. Exit 1 on any
    /// failure.
    Verify(verify::VerifyArgs),
    /// The colony: failure-domain topology, placement of cells, blast radius, simulation.
    Colony {
        #[command(subcommand)]
        cmd: colony::ColonyCommand,
    },
}

/// Exit status of a command whose output pipe closed (`physalia conform DIR | head`), as a
/// shell reports a process ended by SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: i32 = 141;

/// A reader that stops reading (`| head`) ends the command quietly: Rust ignores SIGPIPE,
/// so `println!` to a closed pipe panics; this hook turns that one panic into the exit a
/// shell expects and leaves every other panic to the default hook.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Conform(args) => conform::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Tla { cmd } => tla::run(cmd).map(|code| u8::try_from(code).unwrap_or(1)),
        Command::Node(args) => node::run(args),
        Command::Cluster { cmd } => cluster::run(cmd),
        Command::Client(args) => client::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Colony { cmd } => colony::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
