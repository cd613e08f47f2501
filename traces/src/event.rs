//! Schema v1: the header line and one event line per core step.
//!
//! `traces/README.md` documents every field. Every enum here is closed: an unknown kind,
//! variant or field is a parse error, never skipped.

use serde::{Deserialize, Serialize};

use crate::kv::{Key, Txn, TxnResult, Value};
use crate::vocab::{
    Ballot, CellId, ClientId, Config, Endpoint, Entry, Envelope, Image, Msg, MsgId, NodeId, OpSeq,
    Role, Slot, TimeoutKind,
};

/// The schema name in every header.
pub const SCHEMA: &str = "physalia-trace";

/// The schema version this crate writes.
pub const VERSION: u32 = 3;

/// The oldest schema version this crate reads (v1 is v2 without snapshots: no
/// `DurableWrite::Snapshot`, no `Msg::Snapshot`, no `start.base`; v2 is v3 without the
/// answers of local reads: no [`ClientEvent::Read`]).
pub const OLDEST_VERSION: u32 = 1;

/// The first line of every trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`VERSION`] when written by this crate; [`OLDEST_VERSION`] to [`VERSION`] when read.
    pub version: u32,
    /// The cell traced.
    pub cell: CellId,
    /// Every node of the cell.
    pub nodes: Vec<NodeId>,
    /// The initial configuration (jury).
    pub config: Config,
    /// The pipeline window α.
    pub alpha: u64,
    /// The moment (in the events' `now` time, ms) from which the run injects no more faults
    /// (global stabilisation time), if the recorder knows one: bounded liveness is checked
    /// after it. Optional; absent means "no liveness claim".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gst: Option<u64>,
    /// The largest difference between two nodes' clocks (ms), so that `now` stamps of
    /// different nodes can be compared soundly (`a` is before `b` only if
    /// `a.now + clock_skew < b.now`). Optional; absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_skew: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Header {
    /// A v1 header for `cell` whose jury is `config`.
    pub fn new(cell: impl Into<CellId>, config: Config, alpha: u64) -> Header {
        Header {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            cell: cell.into(),
            nodes: config.members.clone(),
            config,
            alpha,
            gst: None,
            clock_skew: 0,
        }
    }
}

/// Identifies one durable write batch of a node: `Persisted { up_to }` acknowledges every
/// batch with an id `<= up_to` of the same incarnation.
pub type PersistId = u64;

/// One record made durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DurableWrite {
    /// The promised ballot.
    Promised {
        /// The new promise.
        ballot: Ballot,
    },
    /// An accepted log entry (replacing the one at its slot).
    Accepted {
        /// The entry.
        entry: Entry,
    },
    /// The state machine as of a chosen prefix (a compaction of the node's own applied
    /// prefix, or an installed snapshot): it replaces every log entry below `image.upto`,
    /// and after a restart the commit index starts there. Schema v2.
    Snapshot {
        /// The state.
        image: Image,
    },
}

/// A durable write batch requested by a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persist {
    /// The batch id.
    pub id: PersistId,
    /// The records, to be written atomically and in order.
    pub writes: Vec<DurableWrite>,
}

/// A message sent by a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sent {
    /// Its identity `(node, incarnation, seq)`; the receiving step names it.
    pub id: MsgId,
    /// The destination.
    pub to: Endpoint,
    /// `Some(p)`: held back until persist batch `p` is durable; `None`: sent at once.
    pub after_persist: Option<PersistId>,
    /// The message.
    pub msg: Msg,
}

/// What a step did to a client operation (the client history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientEvent {
    /// The operation was taken in (proposed, queued, or found already in the log).
    Invoke {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// Its transaction.
        txn: Txn,
    },
    /// The operation was answered.
    Return {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// Its result, or unknown.
        result: ClientResult,
    },
    /// An eventually consistent local read was answered (v3; every `local_read` step of a
    /// v3 trace logs its answer).
    Read {
        /// The client.
        client: ClientId,
        /// The answer.
        answer: ReadAnswer,
    },
}

/// A local read's answer: the values of the asked keys as of the node's applied prefix, or
/// a refusal when that prefix is shorter than the client's session floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ReadAnswer {
    /// The values as of the applied prefix `..applied`.
    Values {
        /// How many slots are applied at the node; the client's new session floor.
        applied: Slot,
        /// The values read, in the order asked (`null`: absent).
        values: Vec<(Key, Option<Value>)>,
    },
    /// The node has applied less than the client already saw: ask elsewhere or later.
    Behind {
        /// How many slots are applied at the node.
        applied: Slot,
    },
}

/// The result of a client operation as seen in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientResult {
    /// The result is known.
    Known(TxnResult),
    /// The outcome is unknown (e.g. the client gave up): it may or may not have applied.
    Unknown,
}

/// The node's model-visible state after the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    /// Highest ballot promised (as issued; durable once its batch is persisted).
    pub promised: Ballot,
    /// The role.
    pub role: Role,
    /// The ballot this node stands or leads with (zero for a follower that never ran).
    pub ballot: Ballot,
    /// Slots `< commit` are known chosen.
    pub commit: Slot,
    /// Log entries that changed in this step.
    pub accepted: Vec<Entry>,
}

/// The input of one core step: what `Cell::step` takes, what a trace event records (see
/// [`Kind`]) and what the specification replays. Defined once, here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// A message from another node is delivered; `id` names its send.
    Deliver {
        /// The id of the consumed message.
        id: MsgId,
        /// The sender's Lamport clock.
        lc: u64,
        /// The message.
        msg: Msg,
    },
    /// A timer fired.
    Timeout {
        /// Which one.
        timer: TimeoutKind,
    },
    /// A client request arrived (linearizable, through the log).
    Request {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// The transaction.
        txn: Txn,
    },
    /// An eventually consistent local read.
    LocalRead {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
        /// The client's session floor: the lowest applied index it may observe.
        min_applied: Slot,
    },
    /// Every persist batch with id `<= up_to` is durable.
    Persisted {
        /// The highest durable batch.
        up_to: PersistId,
    },
}

impl Input {
    /// The delivery of `env` to its destination (`env.to`, which the shell routed by).
    pub fn deliver(env: Envelope) -> Input {
        Input::Deliver {
            id: env.id,
            lc: env.lc,
            msg: env.msg,
        }
    }

    /// The input's name in a trace (`"deliver"`, `"timeout"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Input::Deliver { .. } => "deliver",
            Input::Timeout { .. } => "timeout",
            Input::Request { .. } => "request",
            Input::LocalRead { .. } => "local_read",
            Input::Persisted { .. } => "persisted",
        }
    }
}

/// What a step was: the node's (re)start from its durable state, or one [`Input`].
///
/// In JSON a kind is one object with one key, the kind's name (`{"start": {...}}`,
/// `{"deliver": {...}}`, ...): `Start` and the inputs share one namespace, so a trace line
/// reads the same as if they were one enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The node (re)starts from its durable state; `promised` and `log_len` summarise it.
    Start {
        /// The durable promise.
        promised: Ballot,
        /// The number of durable log entries.
        log_len: u64,
        /// The copy was created by teaching (for a node added after the cell began, or added
        /// back after its earlier copy was deleted), not with the cell: it votes and promises
        /// only for slots from the start of the membership it learns it was added for.
        learner: bool,
        /// A learner's copy takes its membership only from a change in force at or after
        /// this slot: the slot an earlier copy of its node left the jury (a deleted copy's
        /// tombstone), [`NO_FLOOR_YET`] when that is unknown (a node re-entered after its
        /// state was lost: every earlier membership must end first), 0 otherwise.
        floor: Slot,
        /// The durable snapshot's point: every slot below it is chosen and folded into the
        /// snapshot (`DurableWrite::Snapshot`); the commit index starts here. 0 without a
        /// snapshot (and in schema v1, which has none).
        base: Slot,
    },
    /// The step took this input.
    Input(Input),
}

/// A learner copy's floor when the slot its node left is unknown: it takes a membership only
/// from a change applied after a change removing its node (which sets the floor).
pub const NO_FLOOR_YET: Slot = Slot::MAX;

/// Every kind name a trace may hold, for error messages.
pub const KIND_NAMES: &[&str] = &[
    "start",
    "deliver",
    "timeout",
    "request",
    "local_read",
    "persisted",
];

impl Kind {
    /// A short name for the kind (`"start"`, `"deliver"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Start { .. } => "start",
            Kind::Input(i) => i.name(),
        }
    }

    /// The input, unless this is a start.
    pub fn input(&self) -> Option<&Input> {
        match self {
            Kind::Start { .. } => None,
            Kind::Input(i) => Some(i),
        }
    }
}

impl From<Input> for Kind {
    fn from(i: Input) -> Kind {
        Kind::Input(i)
    }
}

/// The body of a `start` kind.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    promised: Ballot,
    log_len: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    learner: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    floor: Slot,
    #[serde(default, skip_serializing_if = "is_zero")]
    base: Slot,
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Kind::Start {
                promised,
                log_len,
                learner,
                floor,
                base,
            } => {
                let mut m = s.serialize_map(Some(1))?;
                let body = StartBody {
                    promised: *promised,
                    log_len: *log_len,
                    learner: *learner,
                    floor: *floor,
                    base: *base,
                };
                m.serialize_entry("start", &body)?;
                m.end()
            }
            Kind::Input(i) => i.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        d.deserialize_map(kind_serde::KindVisitor)
    }
}

/// The hand-written half of [`Kind`]'s serde: read the one key, then either a start body or
/// the [`Input`] variant of that name, without buffering the value.
mod kind_serde {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use serde::Deserialize;

    use super::{Input, Kind, StartBody, KIND_NAMES};

    pub(super) struct KindVisitor;

    impl<'de> Visitor<'de> for KindVisitor {
        type Value = Kind;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "an object with one key, one of {}",
                KIND_NAMES.join(", ")
            )
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
            let Some(key) = map.next_key::<String>()? else {
                return Err(de::Error::invalid_length(0, &self));
            };
            let kind = match key.as_str() {
                "start" => {
                    let b: StartBody = map.next_value()?;
                    Kind::Start {
                        promised: b.promised,
                        log_len: b.log_len,
                        learner: b.learner,
                        floor: b.floor,
                        base: b.base,
                    }
                }
                k if KIND_NAMES.contains(&k) => Kind::Input(map.next_value_seed(InputSeed(k))?),
                k => return Err(de::Error::unknown_variant(k, KIND_NAMES)),
            };
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_length(2, &self));
            }
            Ok(kind)
        }
    }

    /// Deserializes the value of key `.0` as that variant of [`Input`].
    struct InputSeed<'k>(&'k str);

    impl<'de> DeserializeSeed<'de> for InputSeed<'_> {
        type Value = Input;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Input, D::Error> {
            Input::deserialize(Tagged {
                variant: self.0,
                body: d,
            })
        }
    }

    /// A deserializer that presents `body` as the enum variant `variant`.
    struct Tagged<'k, D> {
        variant: &'k str,
        body: D,
    }

    impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Tagged<'_, D> {
        type Error = D::Error;

        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            v.visit_enum(self)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, D::Error> {
            v.visit_enum(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            struct identifier ignored_any
        }
    }

    impl<'de, D: de::Deserializer<'de>> de::EnumAccess<'de> for Tagged<'_, D> {
        type Error = D::Error;
        type Variant = Body<D>;

        fn variant_seed<V: DeserializeSeed<'de>>(
            self,
            seed: V,
        ) -> Result<(V::Value, Body<D>), D::Error> {
            let name =
                seed.deserialize(de::value::StrDeserializer::<D::Error>::new(self.variant))?;
            Ok((name, Body(self.body)))
        }
    }

    /// The value of a variant, read from the original deserializer.
    struct Body<D>(D);

    impl<'de, D: de::Deserializer<'de>> de::VariantAccess<'de> for Body<D> {
        type Error = D::Error;

        fn unit_variant(self) -> Result<(), D::Error> {
            <()>::deserialize(self.0)
        }

        fn newtype_variant_seed<T: DeserializeSeed<'de>>(
            self,
            seed: T,
        ) -> Result<T::Value, D::Error> {
            seed.deserialize(self.0)
        }

        fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_tuple(len, v)
        }

        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_struct("Input", fields, v)
        }
    }
}

/// One core step of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEvent {
    /// The node that stepped.
    pub node: NodeId,
    /// Its incarnation (bumped at each restart).
    pub inc: u64,
    /// Dense per-(node, incarnation) step counter from 0.
    pub seq: u64,
    /// The node's Lamport clock after the step.
    pub lc: u64,
    /// The logical time passed to the step (milliseconds; diagnostics only, never order).
    pub now: u64,
    /// The step's kind and input.
    pub kind: Kind,
    /// Messages created by the step.
    pub sent: Vec<Sent>,
    /// Held messages this step released (a `persisted` step acknowledging their batch).
    /// A released message leaves with this step's clock, so its receive follows this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<MsgId>,
    /// The durable write the step requested, if any.
    pub persist: Option<Persist>,
    /// Client invocations and replies of this step.
    pub client: Vec<ClientEvent>,
    /// The node's model-visible state after the step.
    pub state: Observed,
}
