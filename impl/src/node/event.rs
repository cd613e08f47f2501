//! The events the network tasks hand to the node's event loop ([`super::runtime`]).

use tokio::sync::oneshot;

use super::wire::{ClientRequest, ClientResponse, PeerMsg};
use physalia_traces::NodeId;

/// An input to the event loop from the network tasks.
#[derive(Debug)]
pub enum Event {
    /// A frame from a peer (already authenticated).
    Peer {
        /// The peer.
        from: NodeId,
        /// The message.
        msg: PeerMsg,
    },
    /// A client's request and where to answer it.
    Client {
        /// The request.
        req: ClientRequest,
        /// The answer goes here.
        reply: oneshot::Sender<ClientResponse>,
    },
    /// Stop the loop.
    Shutdown,
}
