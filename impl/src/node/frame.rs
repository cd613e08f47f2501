//! The frame codec of every connection (node↔node and client↔node).
//!
//! On the wire a frame is a 4-byte big-endian length followed by a body of that many
//! bytes (`tokio_util`'s length-delimited codec, which refuses bodies over
//! [`MAX_FRAME`] before reading them). The body is
//!
//! ```text
//! payload (postcard) | crc32c(payload) as 4 bytes LE | HMAC-SHA256(key, payload | crc) 32 bytes
//! ```
//!
//! [`FrameKey::open`] checks, in order: the body is long enough, the checksum matches
//! (a damaged frame), the HMAC matches (a frame from someone without the cluster key), and
//! the payload decodes completely. Each failure is a distinct [`FrameError`], so a node can
//! count what it drops by reason.

use std::path::Path;

use crc::{Crc, CRC_32_ISCSI};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use thiserror::Error;

/// Largest frame body accepted or produced (bytes). A catch-up `Accept` carries at most
/// `max_batch` entries of bounded transactions, and a `Promise` at most the log above the
/// sender's snapshot (about `snapshot_every` entries): far below this for transactions of
/// ordinary size; a `Snapshot` carries the cell's store (not bounded yet: `impl/README.md`).
pub const MAX_FRAME: usize = 4 << 20;

/// CRC-32C (Castagnoli).
static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

fn crc32c(data: &[u8]) -> u32 {
    CRC32C.checksum(data)
}

/// Length of the checksum trailer.
const CRC_LEN: usize = 4;
/// Length of the HMAC trailer.
const MAC_LEN: usize = 32;

/// Why a frame was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The body is shorter than its trailers.
    #[error("frame body of {len} bytes is shorter than its 36-byte trailer")]
    TooShort {
        /// The body's length.
        len: usize,
    },
    /// The body is longer than [`MAX_FRAME`].
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The checksum does not match: the frame was damaged.
    #[error("frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of the payload.
        computed: u32,
    },
    /// The HMAC does not match: the sender does not hold the cluster key.
    #[error("frame HMAC does not match the cluster key")]
    BadMac,
    /// The payload is not a valid message.
    #[error("frame payload does not decode: {0}")]
    Decode(String),
    /// A message could not be encoded (never expected for our types).
    #[error("message does not encode: {0}")]
    Encode(String),
}

impl FrameError {
    /// A short label for metrics (`reason="..."`).
    pub fn label(&self) -> &'static str {
        match self {
            FrameError::TooShort { .. } => "too_short",
            FrameError::Oversized { .. } => "oversized",
            FrameError::Checksum { .. } => "checksum",
            FrameError::BadMac => "bad_hmac",
            FrameError::Decode(_) => "malformed",
            FrameError::Encode(_) => "encode",
        }
    }
}

/// Why a key file could not be used.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read key file {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The cause (said in the message, not chained, so that it is reported once).
        cause: std::io::Error,
    },
    /// The file does not hold 64 hex digits or more.
    #[error("key file {path}: {why} (expected at least 64 hex digits, i.e. 32 bytes)")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The cluster key: every frame is authenticated with it.
#[derive(Clone)]
pub struct FrameKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKey(..)")
    }
}

impl FrameKey {
    /// A key from raw bytes (any length; HMAC pads or hashes it).
    pub fn new(key: &[u8]) -> FrameKey {
        FrameKey {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length"),
        }
    }

    /// Reads a key file: hex digits (whitespace around them is ignored), at least 32 bytes.
    pub fn from_file(path: &Path) -> Result<FrameKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|cause| KeyError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        let format = |why: String| KeyError::Format {
            path: path.display().to_string(),
            why,
        };
        let bytes = hex::decode(text.trim()).map_err(|e| format(format!("not hex: {e}")))?;
        if bytes.len() < 32 {
            return Err(format(format!("only {} bytes", bytes.len())));
        }
        Ok(FrameKey::new(&bytes))
    }

    /// The HMAC of `data` under this key (e.g. a fingerprint of the key: the HMAC of a
    /// fixed label, which says nothing about the key itself).
    pub fn tag_of(&self, data: &[u8]) -> [u8; MAC_LEN] {
        self.tag(data)
    }

    fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Encodes `msg` into a frame body (without the length prefix).
    pub fn seal<T: Serialize>(&self, msg: &T) -> Result<Vec<u8>, FrameError> {
        let mut body = postcard::to_stdvec(msg).map_err(|e| FrameError::Encode(e.to_string()))?;
        let crc = crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let tag = self.tag(&body);
        body.extend_from_slice(&tag);
        if body.len() > MAX_FRAME {
            return Err(FrameError::Oversized {
                len: body.len(),
                max: MAX_FRAME,
            });
        }
        Ok(body)
    }

    /// Checks and decodes a frame body (without the length prefix).
    pub fn open<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, FrameError> {
        if body.len() > MAX_FRAME {
            return Err(FrameError::Oversized {
                len: body.len(),
                max: MAX_FRAME,
            });
        }
        if body.len() < CRC_LEN + MAC_LEN {
            return Err(FrameError::TooShort { len: body.len() });
        }
        let (signed, tag) = body.split_at(body.len() - MAC_LEN);
        let (payload, crc) = signed.split_at(signed.len() - CRC_LEN);
        let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        let computed = crc32c(payload);
        if stored != computed {
            return Err(FrameError::Checksum { stored, computed });
        }
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| FrameError::BadMac)?;
        let (msg, rest) =
            postcard::take_from_bytes(payload).map_err(|e| FrameError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FrameError::Decode(format!(
                "{} trailing bytes after the message",
                rest.len()
            )));
        }
        Ok(msg)
    }
}

/// The length-delimited codec every connection uses, with the [`MAX_FRAME`] limit.
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::wire::{PeerMsg, Wire};
    use physalia_traces::{Ballot, Envelope, Msg, MsgId, NodeId};
    use proptest::prelude::*;

    fn key() -> FrameKey {
        FrameKey::new(&[7u8; 32])
    }

    fn sample(round: u64, cell: String) -> Wire {
        Wire::Peer(PeerMsg::Cell {
            cell,
            env: Envelope {
                id: MsgId {
                    node: NodeId(1),
                    inc: 2,
                    seq: round,
                },
                to: NodeId(3),
                lc: 9,
                msg: Msg::Prepare {
                    ballot: Ballot {
                        round,
                        node: NodeId(1),
                    },
                    from: 4,
                },
            },
        })
    }

    #[test]
    fn round_trip() {
        let msg = sample(5, "c0".into());
        let body = key().seal(&msg).unwrap();
        assert_eq!(key().open::<Wire>(&body).unwrap(), msg);
    }

    #[test]
    fn short_garbage_and_trailing_bytes_are_refused() {
        assert_eq!(
            key().open::<Wire>(&[1, 2, 3]),
            Err(FrameError::TooShort { len: 3 })
        );
        let garbage = vec![0xAB; 100];
        assert!(matches!(
            key().open::<Wire>(&garbage),
            Err(FrameError::Checksum { .. })
        ));
        // A valid frame around a payload that is not a message.
        let mut body = vec![0xFF, 0xFF, 0xFF];
        body.extend_from_slice(&crc32c(&body).to_le_bytes());
        let tag = key().tag(&body);
        body.extend_from_slice(&tag);
        assert!(matches!(
            key().open::<Wire>(&body),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn oversized_is_refused() {
        let body = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            key().open::<Wire>(&body),
            Err(FrameError::Oversized { .. })
        ));
    }

    #[test]
    fn key_file_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "zz").unwrap();
        let err = FrameKey::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("not hex"), "{err}");
        std::fs::write(&p, "abcd\n").unwrap();
        let err = FrameKey::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("only 2 bytes"), "{err}");
        std::fs::write(&p, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(FrameKey::from_file(&p).is_ok());
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_refused(round in 0u64..1_000_000, cell in "[a-z0-9]{0,12}", bit in any::<proptest::sample::Index>()) {
            let msg = sample(round, cell);
            let mut body = key().seal(&msg).unwrap();
            prop_assert_eq!(key().open::<Wire>(&body).unwrap(), msg);
            let i = bit.index(body.len() * 8);
            body[i / 8] ^= 1 << (i % 8);
            prop_assert!(key().open::<Wire>(&body).is_err());
        }

        #[test]
        fn a_wrong_key_is_refused(round in 0u64..1_000_000, other in proptest::collection::vec(any::<u8>(), 1..64)) {
            prop_assume!(other != vec![7u8; 32]);
            let body = FrameKey::new(&other).seal(&sample(round, "c1".into())).unwrap();
            prop_assert_eq!(key().open::<Wire>(&body), Err(FrameError::BadMac));
        }
    }
}
