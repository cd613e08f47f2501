//! `physalia explore`: serve the stateright Explorer on the model.

use anyhow::Result;
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
    let model = CellModel::new(cfg);
    println!("Explorer on http://{}/ (Ctrl-C to stop)", args.addr);
    model.checker().serve(args.addr.as_str());
    Ok(0)
}
