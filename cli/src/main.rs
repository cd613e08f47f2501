//! The `physalia` command. Only the `tla` subcommand is wired here so far.

use clap::{Parser, Subcommand};

mod tla;

#[derive(Parser, Debug)]
#[command(name = "physalia", about = "Physalia workbench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check the TLA+ specification with TLC.
    Tla {
        #[command(subcommand)]
        cmd: tla::TlaCommand,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match &cli.cmd {
        Cmd::Tla { cmd } => tla::run(cmd),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
