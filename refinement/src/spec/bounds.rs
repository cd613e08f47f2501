//! Bounds on what trace input may make the replay count, allocate or loop over.
//!
//! Every slot of a trace is proposed by a leader, which logs the entry (`state.accepted`),
//! and leaders propose slots in order from 0 (a new leader from its commit index, which is
//! a slot proposed before). So no slot-valued field (a commit index, a `Commit`'s `up_to`, a
//! reported or proposed slot, a snapshot's point, a restart's log length) can exceed the
//! number of entries the whole trace logs. A larger value is refused at its event, before
//! any rule runs, naming the field: a commit index of 2⁶⁴−1 is a finding, never an attempt
//! to walk or allocate that many slots.

use physalia_traces::{DurableWrite, Image, Input, Kind, Merged, Msg, Slot, TraceEvent};

use super::Finding;

/// The bound of [`super::CellFacts::slot_bound`]: the number of log entries `merged` logs.
pub fn slot_bound(merged: &Merged) -> Slot {
    merged
        .events
        .iter()
        .map(|l| l.event.state.accepted.len() as u64)
        .fold(0u64, u64::saturating_add)
}

/// The bound of [`super::CellFacts::persist_bound`]: the number of persist batches `merged`
/// logs (a node numbers its batches from 1 in each incarnation, so no batch id, held
/// message's batch or acknowledgement exceeds it).
pub fn persist_bound(merged: &Merged) -> u64 {
    merged
        .events
        .iter()
        .filter(|l| l.event.persist.is_some())
        .count() as u64
}

/// The first persist-id field of `ev` above `bound`, as a finding.
pub fn check_persist(ev: &TraceEvent, bound: u64) -> Option<Finding> {
    let mut fields: Vec<(String, u64)> = Vec::new();
    if let Some(p) = &ev.persist {
        fields.push(("persist.id".into(), p.id));
    }
    if let Kind::Input(Input::Persisted { up_to }) = &ev.kind {
        fields.push(("kind.up_to".into(), *up_to));
    }
    for (i, s) in ev.sent.iter().enumerate() {
        if let Some(a) = s.after_persist {
            fields.push((format!("sent[{i}].after_persist"), a));
        }
    }
    let (field, value) = fields.into_iter().find(|(_, v)| *v > bound)?;
    Some(Finding::new(
        field,
        format!("at most {bound}: the trace logs {bound} persist batches"),
        value,
    ))
}

/// The first slot-valued field of `ev` above `bound`, as a finding.
pub fn check(ev: &TraceEvent, bound: Slot) -> Option<Finding> {
    let mut fields: Vec<(String, Slot)> = Vec::new();
    match &ev.kind {
        Kind::Start {
            log_len,
            floor,
            base,
            ..
        } => {
            fields.push(("kind.log_len".into(), *log_len));
            fields.push(("kind.base".into(), *base));
            if *floor != physalia_traces::NO_FLOOR_YET {
                fields.push(("kind.floor".into(), *floor));
            }
        }
        Kind::Input(Input::Deliver { msg, .. }) => msg_slots("kind.msg", msg, &mut fields),
        Kind::Input(_) => {}
    }
    for (i, s) in ev.sent.iter().enumerate() {
        msg_slots(&format!("sent[{i}].msg"), &s.msg, &mut fields);
    }
    if let Some(p) = &ev.persist {
        for (i, w) in p.writes.iter().enumerate() {
            match w {
                DurableWrite::Promised { .. } => {}
                DurableWrite::Accepted { entry } => {
                    fields.push((format!("persist.writes[{i}].slot"), entry.slot))
                }
                DurableWrite::Snapshot { image } => {
                    image_slots(&format!("persist.writes[{i}].image"), image, &mut fields)
                }
            }
        }
    }
    fields.push(("state.commit".into(), ev.state.commit));
    for (i, e) in ev.state.accepted.iter().enumerate() {
        fields.push((format!("state.accepted[{i}].slot"), e.slot));
    }
    let (field, value) = fields.into_iter().find(|(_, v)| *v > bound)?;
    Some(Finding::new(
        field,
        format!(
            "at most {bound}: the trace logs {bound} log entries, and slots are proposed \
             in order from 0"
        ),
        value,
    ))
}

fn msg_slots(at: &str, msg: &Msg, out: &mut Vec<(String, Slot)>) {
    match msg {
        Msg::Prepare { from, .. } => out.push((format!("{at}.from"), *from)),
        Msg::Promise { accepted, .. } => {
            for (i, e) in accepted.iter().enumerate() {
                out.push((format!("{at}.accepted[{i}].slot"), e.slot));
            }
        }
        Msg::Accept { proposals, .. } => {
            for (i, p) in proposals.iter().enumerate() {
                out.push((format!("{at}.proposals[{i}].slot"), p.slot));
            }
        }
        Msg::Accepted { slots, commit, .. } => {
            for (i, s) in slots.iter().enumerate() {
                out.push((format!("{at}.slots[{i}]"), *s));
            }
            out.push((format!("{at}.commit"), *commit));
        }
        Msg::Commit { up_to, .. } => out.push((format!("{at}.up_to"), *up_to)),
        Msg::Snapshot { image, .. } => image_slots(&format!("{at}.image"), image, out),
        Msg::Nack { .. } | Msg::Request { .. } | Msg::Redirect { .. } | Msg::Reply { .. } => {}
    }
}

fn image_slots(at: &str, image: &Image, out: &mut Vec<(String, Slot)>) {
    // (Its juries' first slots lie up to α beyond a change: they are only looked up.)
    out.push((format!("{at}.upto"), image.upto));
    if let Some(s) = image.last_change {
        out.push((format!("{at}.last_change"), s));
    }
}
