//! The CI configuration, checked exhaustively: every `always` property holds and every
//! `sometimes` witness is reached. This is the slowest test of the workspace (minutes).

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::{CellConfig, CellModel};

#[test]
fn ci_configuration_is_clean_and_non_vacuous() {
    let cfg = CellConfig::default();
    let opts = CheckOptions {
        strategy: Strategy::Dfs,
        threads: 2,
        symmetry: false,
    };
    let report = check::run(CellModel::new(cfg), &opts, |_| {}).unwrap();
    assert!(!report.stopped_early);
    for p in &report.properties {
        assert!(
            matches!(p.verdict, Verdict::Holds | Verdict::Reached(_)),
            "{}: {:?}",
            p.name,
            p.verdict
        );
    }
    eprintln!(
        "CI configuration: {} generated, {} unique, depth {}, {:.1} s",
        report.stats.generated,
        report.stats.unique,
        report.stats.depth,
        report.stats.elapsed.as_secs_f64()
    );
}
