//! The CI suite, checked exhaustively: in each configuration every `always` property holds
//! and every applicable `sometimes` witness is reached. The slowest test of the workspace.

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::symmetry::is_exact;
use physalia_model::{CellConfig, CellModel};

#[test]
fn ci_suite_is_clean_and_non_vacuous() {
    for (name, cfg) in CellConfig::ci_suite() {
        let opts = CheckOptions {
            strategy: Strategy::Dfs,
            threads: 2,
            symmetry: is_exact(&cfg),
        };
        let report = check::run(CellModel::new(cfg), &opts, |_| {}).unwrap();
        assert!(!report.stopped_early, "{name}");
        for p in &report.properties {
            assert!(
                matches!(
                    p.verdict,
                    Verdict::Holds | Verdict::Reached(_) | Verdict::NotApplicable
                ),
                "{name}: {}: {:?}",
                p.name,
                p.verdict
            );
        }
        let reached = report
            .properties
            .iter()
            .filter(|p| matches!(p.verdict, Verdict::Reached(_)))
            .count();
        assert!(reached >= 3, "{name}: only {reached} witnesses reached");
        eprintln!(
            "{name}: {} generated, {} unique, depth {}, {:.1} s",
            report.stats.generated,
            report.stats.unique,
            report.stats.depth,
            report.stats.elapsed.as_secs_f64()
        );
    }
}

/// Every witness is reached by some configuration of the suite.
#[test]
fn ci_suite_reaches_every_witness_somewhere() {
    use physalia_model::properties as p;
    let suite = CellConfig::ci_suite();
    for name in [
        p::COMMAND_CHOSEN,
        p::REPROPOSED,
        p::COMMIT_AFTER_RESTART,
        p::CONDITION_FAILED,
    ] {
        assert!(
            suite.iter().any(|(_, cfg)| check::applicable(cfg, name)),
            "{name} applies to no configuration of the suite"
        );
    }
}
