//! Eventually consistent local reads (v3 traces log each answer): a `local_read` step
//! answers from the node's applied prefix, which `committed prefix` holds to the chosen
//! log, and never below the session floor the client sent.
//!
//! - **consistent prefix**: the values answered at `applied` are those the chosen prefix
//!   `..applied` gives (the node's own applied store: the specification applies the node's
//!   committed log, each slot of which `committed prefix` checks is chosen).
//! - **monotonic reads**: a read is served only from a prefix at least as long as the
//!   client's floor (`min_applied`, the longest prefix its session has seen); below it the
//!   node answers `behind`.
//!
//! The applied index answered must be the node's own (a different one is a step mismatch).

use physalia_traces::{ClientId, Input, Kind, ReadAnswer};

use super::Ctx;
use crate::spec::properties::{CONSISTENT_PREFIX, MONOTONIC_READS};
use crate::spec::Violation;

/// The answer `answer` to `client` logged by the step (the `nth` of the step's answers).
pub(super) fn check_answer(
    ctx: &mut Ctx<'_>,
    field: &str,
    client: ClientId,
    answer: &ReadAnswer,
    nth: usize,
) {
    let Kind::Input(Input::LocalRead {
        client: asked,
        keys,
        min_applied,
    }) = &ctx.ev.kind
    else {
        ctx.find(
            field,
            "a read answer only in a local_read step",
            format!("read {client} {answer}"),
        );
        return;
    };
    if *asked != client || nth > 1 {
        ctx.find(
            field,
            format!("one answer, to {asked}"),
            format!("read {client} {answer}"),
        );
        return;
    }
    let store = &ctx.w.store;
    let applied = store.applied;
    let n = ctx.n;
    match answer {
        ReadAnswer::Behind { applied: a } => {
            if applied >= *min_applied || *a != applied {
                let allowed = if applied >= *min_applied {
                    format!(
                        "the values as of the applied prefix ..{applied} (at least the floor \
                         {min_applied})"
                    )
                } else {
                    format!("behind applied={applied}")
                };
                ctx.find(format!("{field}.answer"), allowed, answer);
            }
        }
        ReadAnswer::Values { applied: a, values } => {
            if a < min_applied {
                ctx.violations.push(Violation {
                    property: MONOTONIC_READS,
                    detail: format!(
                        "{n} served {client} a read at applied {a}, below the floor {min_applied} \
                         its session has seen: the session would see the applied index go back"
                    ),
                });
                return;
            }
            if *a != applied {
                ctx.find(
                    format!("{field}.answer.applied"),
                    format!("{applied}: the node's applied prefix"),
                    a,
                );
                return;
            }
            let asked_keys: Vec<_> = values.iter().map(|(k, _)| k).collect();
            if asked_keys.len() != keys.len() || asked_keys.iter().zip(keys).any(|(a, b)| *a != b) {
                ctx.find(
                    format!("{field}.answer.values"),
                    "one value per key asked, in the order asked",
                    answer,
                );
                return;
            }
            for (key, value) in values {
                let expected = store.kv.get(key);
                if expected != value.as_ref() {
                    ctx.violations.push(Violation {
                        property: CONSISTENT_PREFIX,
                        detail: format!(
                            "{n} answered {client}'s local read of {key} with {} at applied \
                             {a}, but the chosen prefix ..{a} gives {}",
                            physalia_traces::OrAbsent(value.as_ref()),
                            physalia_traces::OrAbsent(expected)
                        ),
                    });
                }
            }
        }
    }
}

/// A `local_read` step of a v3 trace logs its answer.
pub(super) fn check_answered(ctx: &mut Ctx<'_>, answers: usize) {
    let Kind::Input(Input::LocalRead { client, .. }) = &ctx.ev.kind else {
        return;
    };
    if answers == 0 && ctx.facts.version >= 3 {
        let allowed = format!("the answer to {client}'s read (a v3 trace logs it)");
        ctx.find("client", allowed, "none");
    }
}
