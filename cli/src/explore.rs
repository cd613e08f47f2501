//! `physalia explore`: serve the stateright Explorer on the model.

use std::net::{TcpListener, ToSocketAddrs};

use anyhow::{Context, Result};
use clap::Args;
use physalia_model::CellModel;
use stateright::Model;

use crate::check::ModelArgs;

/// Arguments of `physalia explore`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,
}

/// Serves the Explorer until the process is stopped.
pub fn run(args: &ExploreArgs) -> Result<u8> {
    let cfg = args.model.config()?;
    // Bind first, so that a bad or busy address is one line and exit 2, not a panic
    // inside stateright after "Explorer on ..." (it binds again at once: the port is
    // free for it unless another process takes it in between).
    let addr = args
        .addr
        .to_socket_addrs()
        .with_context(|| format!("--addr {}: not an address to listen on", args.addr))?
        .next()
        .with_context(|| format!("--addr {}: resolves to no address", args.addr))?;
    drop(
        TcpListener::bind(addr)
            .with_context(|| format!("--addr {}: cannot listen there", args.addr))?,
    );
    let model = CellModel::new(cfg);
    println!("Explorer on http://{addr}/ (Ctrl-C to stop)");
    model.checker().serve(addr);
    Ok(0)
}
