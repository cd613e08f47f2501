//! Progress for long jobs (`simulate`, `verify`): an `indicatif` bar or spinner on stderr
//! with elapsed time, rate and an estimate, drawn only when stderr is a terminal (in a file
//! or a pipe nothing is drawn: no `\r`-joined updates) and never with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes: stderr if it is a terminal and not `quiet`, else nowhere.
fn target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        // indicatif's stderr target draws nothing unless stderr is a terminal.
        ProgressDrawTarget::stderr_with_hz(4)
    }
}

/// A bar over `len` units called `unit` (e.g. "events", "seeds"), with a message.
pub fn bar(len: u64, unit: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target(quiet));
    let template = format!(
        "  [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} [{{elapsed_precise}}, {{per_sec}}, about {{eta}} left]"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("#> "));
    }
    pb
}

/// A spinner for a job of unknown length (a model check), with a message.
pub fn spinner(quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target(quiet));
    if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg} [{elapsed_precise}]") {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}
