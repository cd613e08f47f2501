//! Linearizability of a client history against the key-value semantics.
//!
//! A Wing–Gong search (Wing and Gong, "Testing and verifying concurrent objects", 1993) with
//! Lowe's memoisation of visited configurations (Lowe, "Testing for linearizability", 2017):
//! a configuration is how many operations of each client are linearized plus the store they
//! produced. Operations still pending may take effect (with any result) or not at all.

use std::collections::HashSet;

use crate::kv::{self, KvState, TxnResult};
use crate::state::OpRecord;
use crate::types::{ClientId, OpSeq};

/// Whether the history (per client, its operations in order) is linearizable.
pub fn is_linearizable(history: &[Vec<OpRecord>]) -> bool {
    linearization(history).is_some()
}

/// A linearization of the history, as `(client, op)` in order, if one exists. Pending
/// operations that were left out do not appear.
pub fn linearization(history: &[Vec<OpRecord>]) -> Option<Vec<(ClientId, OpSeq)>> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let done = vec![0u8; history.len()];
    search(history, done, KvState::default(), &mut seen, &mut order).then_some(order)
}

fn search(
    history: &[Vec<OpRecord>],
    done: Vec<u8>,
    kv: KvState,
    seen: &mut HashSet<(Vec<u8>, KvState)>,
    order: &mut Vec<(ClientId, OpSeq)>,
) -> bool {
    let complete = history.iter().enumerate().all(|(c, ops)| {
        let d = done[c] as usize;
        d == ops.len() || (d + 1 == ops.len() && ops[d].result.is_none())
    });
    if complete {
        return true;
    }
    if !seen.insert((done.clone(), kv)) {
        return false;
    }
    for (c, ops) in history.iter().enumerate() {
        let d = done[c] as usize;
        let Some(op) = ops.get(d) else { continue };
        // Real-time order: everything that completed before `op` was invoked goes first.
        let ready = op
            .after
            .iter()
            .zip(&done)
            .all(|(&need, &have)| have >= need);
        if !ready {
            continue;
        }
        let mut next_kv = kv;
        let outcome: TxnResult = next_kv.apply(kv::workload(c as ClientId, d as OpSeq));
        if op.result.is_some_and(|r| r != outcome) {
            continue;
        }
        let mut next_done = done.clone();
        next_done[c] += 1;
        order.push((c as ClientId, d as OpSeq));
        if search(history, next_done, next_kv, seen, order) {
            return true;
        }
        order.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(after: &[u8], result: Option<TxnResult>) -> OpRecord {
        let mut padded = [0; crate::state::MAX_CLIENTS];
        padded[..after.len()].copy_from_slice(after);
        OpRecord {
            after: padded,
            result,
        }
    }

    #[test]
    fn concurrent_cas_race_is_linearizable_either_way() {
        // c0: cas(x:∅→1), c1: cas(x:1→2); concurrent.
        let h = vec![
            vec![op(&[0, 0], Some(TxnResult::Ok))],
            vec![op(&[0, 0], Some(TxnResult::CasFailed(None)))],
        ];
        assert_eq!(linearization(&h), Some(vec![(1, 0), (0, 0)]));
        let h = vec![
            vec![op(&[0, 0], Some(TxnResult::Ok))],
            vec![op(&[0, 0], Some(TxnResult::Ok))],
        ];
        assert_eq!(linearization(&h), Some(vec![(0, 0), (1, 0)]));
    }

    #[test]
    fn stale_failure_after_completed_write_is_not_linearizable() {
        // c0's cas completed before c1 invoked (after = [1, 0]); c1 still saw x absent.
        let h = vec![
            vec![op(&[0, 0], Some(TxnResult::Ok))],
            vec![op(&[1, 0], Some(TxnResult::CasFailed(None)))],
        ];
        assert!(!is_linearizable(&h));
    }

    #[test]
    fn pending_operation_may_take_effect_or_not() {
        // c0 pending; c1's cas succeeded, which needs c0's write to have happened.
        let h = vec![
            vec![op(&[0, 0], None)],
            vec![op(&[0, 0], Some(TxnResult::Ok))],
        ];
        assert!(is_linearizable(&h));
        // c1's cas failed seeing ∅: c0's pending write left out.
        let h = vec![
            vec![op(&[0, 0], None)],
            vec![op(&[0, 0], Some(TxnResult::CasFailed(None)))],
        ];
        assert!(is_linearizable(&h));
        // But a result nobody could produce is rejected.
        let h = vec![
            vec![op(&[0, 0], None)],
            vec![op(&[0, 0], Some(TxnResult::CasFailed(Some(7))))],
        ];
        assert!(!is_linearizable(&h));
    }
}
