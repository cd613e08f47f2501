//! `physalia`: the workbench's command line. One subcommand per job.

mod bench;
mod check;
mod client;
mod cluster;
mod colony;
mod conform;
mod explore;
mod itf;
mod junit;
mod lin;
mod monitor;
mod nemesis;
mod node;
mod output;
mod progress;
mod shard;
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
    /// Benchmarks with same-run ratios: model checking, TLC, trace replay, linearizability,
    /// the simulator, and the node on loopback (latency, throughput, tracing cost, idle cells).
    Bench(bench::BenchArgs),
    /// Replay a recorded trace (one file, or the per-node files of one run) against the
    /// specification: every step must be one it allows, every safety property must hold on
    /// every replayed state, the client history must be linearizable, and bounded liveness
    /// must hold after GST. Exit 0: conforms; 1: does not; 2: the trace is unusable.
    Conform(conform::ConformArgs),
    /// Check client histories for linearizability: ours (JSON Lines), Porcupine's Jepsen
    /// etcd logs or Jepsen's EDN; registers or the cell's transactions; export between them.
    /// Exit 0: linearizable; 1: not (with the smallest failing sub-history); 2: unusable or
    /// undecided.
    Lin(lin::LinArgs),
    /// Conformance of a live cluster: tail every node's trace files while they are written,
    /// merge them as `conform` does, replay each event against the specification as it
    /// comes, and report each divergence the moment it is found, with events/s and lag.
    /// Exit 0: no divergence; 1: a divergence; 2: a trace cannot be used or checked.
    Monitor(monitor::MonitorArgs),
    /// Jepsen-style test of a real cluster: node processes on 127.0.0.1, concurrent clients
    /// of every transaction kind, faults on a seeded schedule (kill, pause, partition, disk,
    /// restart-all, duplicate-process, hostile), then the clients' history, every
    /// acknowledged write, the counters and every cell's traces checked. Exit 0: valid;
    /// 1: anomaly; 2: could not run.
    Nemesis(nemesis::NemesisArgs),
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

impl Command {
    /// The subcommand's name, as the error document names it.
    fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Explore(_) => "explore",
            Command::Simulate(_) => "simulate",
            Command::Tla { .. } => "tla",
            Command::Node(_) => "node",
            Command::Cluster { .. } => "cluster",
            Command::Client(_) => "client",
            Command::Bench(_) => "bench",
            Command::Conform(_) => "conform",
            Command::Verify(_) => "verify",
            Command::Lin(_) => "lin",
            Command::Nemesis(_) => "nemesis",
            Command::Monitor(_) => "monitor",
            Command::Colony { .. } => "colony",
        }
    }
}

/// Whether the command line asks for JSON output (`--json` before any `--`), so that even
/// an error clap finds in the arguments is reported as a JSON document.
fn wants_json(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = wants_json(&argv);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let shown = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if json && !shown {
                let command = argv
                    .get(1)
                    .and_then(|a| a.to_str())
                    .unwrap_or("physalia")
                    .to_owned();
                let message = output::strip_ansi(&e.render().to_string());
                let doc = output::error_document(&command, message.trim(), 2);
                let _ = output::emit(&format!("{doc}\n"));
                return ExitCode::from(2);
            }
            e.exit()
        }
    };
    let result = match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Conform(args) => conform::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Lin(args) => lin::run(args),
        Command::Nemesis(args) => nemesis::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Tla { cmd } => tla::run(cmd).map(|code| u8::try_from(code).unwrap_or(1)),
        Command::Node(args) => node::run(args),
        Command::Cluster { cmd } => cluster::run(cmd),
        Command::Client(args) => client::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Colony { cmd } => colony::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if json => {
            let doc = output::error_document(cli.command.name(), &format!("{e:#}"), 2);
            let _ = output::emit(&format!("{doc}\n"));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_json_flag_parses_where_it_is_offered() {
        // A global `--json` must not collide with an argument of the same id below it.
        for line in [
            "physalia client --seeds a:1 --key-file k --json txn {}",
            "physalia client --seeds a:1 --key-file k get x --json",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            let cli = Cli::try_parse_from(&args).unwrap();
            let Command::Client(c) = cli.command else {
                panic!("parsed as another command")
            };
            assert!(c.json, "{args:?}");
        }
    }
}
