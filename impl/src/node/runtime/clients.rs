//! Client requests: operations through the log, local reads, discovery and status.

use std::time::Instant;

use tokio::sync::oneshot;

use physalia_traces::{ClientId, Key, NodeId, OpSeq, Txn};

use super::{Input, LocalRead, Runtime, Waiting, MAX_STATUS_CELLS};
use crate::node::wire::{CellStatus, ClientRequest, ClientResponse, NodeStatus};

impl Runtime {
    pub(super) fn on_client(&mut self, req: ClientRequest, reply: oneshot::Sender<ClientResponse>) {
        // A cell this node left answers with its forwarding pointer; one it never had, with
        // `UnknownCell`.
        let unknown = |rt: &Runtime, cell: String| match rt.forward(&cell) {
            Some(leader) => ClientResponse::Redirect {
                leader: Some(leader),
            },
            None => ClientResponse::UnknownCell { cell },
        };
        let hosted = |rt: &Runtime, cell: &str| {
            rt.index
                .get(cell)
                .copied()
                .filter(|i| !rt.replicas[*i as usize].retired)
        };
        if !self.st.member() && !matches!(req, ClientRequest::Status { .. }) {
            let _ = reply.send(ClientResponse::Unavailable {
                reason: format!(
                    "on probation: this node's data directory is new, and it serves nothing \
                     until {} of its {} peers confirm they never knew it under another instance",
                    self.vouches_needed(),
                    self.peers.len()
                ),
            });
            return;
        }
        match req {
            ClientRequest::Op {
                cell,
                client,
                op,
                txn,
            } => {
                let Some(idx) = hosted(self, &cell) else {
                    let _ = reply.send(unknown(self, cell));
                    return;
                };
                self.request(idx, client, op, txn, reply);
            }
            ClientRequest::Read {
                cell,
                client,
                keys,
                min_applied,
            } => {
                let Some(idx) = hosted(self, &cell) else {
                    let _ = reply.send(unknown(self, cell));
                    return;
                };
                let _ = reply.send(self.local_read(idx, client, keys, min_applied));
            }
            ClientRequest::Locate { cell } => {
                let Some(idx) = hosted(self, &cell) else {
                    let _ = reply.send(unknown(self, cell));
                    return;
                };
                let r = &self.replicas[idx as usize];
                let mut nodes: Vec<(NodeId, String)> = self
                    .peers
                    .iter()
                    .map(|(id, p)| (*id, p.addr.clone()))
                    .collect();
                nodes.push((self.id, self.addr.clone()));
                nodes.sort();
                let members = r.cell.state_machine().jury().latest().0.clone();
                let _ = reply.send(ClientResponse::Directory {
                    nodes,
                    members,
                    leader: r.cell.leader_hint(),
                });
            }
            ClientRequest::Status { limit } => {
                let mut cells: Vec<CellStatus> = self
                    .replicas
                    .iter()
                    .filter(|r| !r.retired)
                    .take((limit as usize).min(MAX_STATUS_CELLS))
                    .map(|r| {
                        let jury = r.cell.state_machine().jury();
                        let (latest, epoch) = jury.latest();
                        CellStatus {
                            cell: r.name.clone(),
                            members: jury.at(r.cell.commit()).members.clone(),
                            role: r.cell.role(),
                            promised: r.cell.promised(),
                            commit: r.cell.commit(),
                            jury: latest.members.clone(),
                            epoch,
                            in_force_from: jury.configs().last().map_or(0, |(s, _, _)| s),
                            since: r.cell.since(),
                            applied: r.cell.state_machine().applied(),
                            parked: r.parked != super::Parked::No,
                        }
                    })
                    .collect();
                cells.sort_by(|a, b| a.cell.cmp(&b.cell));
                let _ = reply.send(ClientResponse::Status(NodeStatus {
                    node: self.id,
                    inc: self.inc,
                    cells_total: self.replicas.iter().filter(|r| !r.retired).count() as u64,
                    cells,
                    standing: self.st.standing,
                    instance: self.st.identity.instance,
                }));
            }
        }
    }

    fn request(
        &mut self,
        idx: u32,
        client: ClientId,
        op: OpSeq,
        txn: Txn,
        reply: oneshot::Sender<ClientResponse>,
    ) {
        let since = Instant::now();
        self.waiting
            .insert((idx, client), Waiting { op, reply, since });
        self.step(idx, Input::Request { client, op, txn });
    }

    fn local_read(
        &mut self,
        idx: u32,
        client: ClientId,
        keys: Vec<Key>,
        min_applied: u64,
    ) -> ClientResponse {
        self.local_reads.clear();
        let input = Input::LocalRead {
            client,
            keys,
            min_applied,
        };
        self.step(idx, input);
        match self.local_reads.pop() {
            Some((_, LocalRead::Values { applied, values })) => {
                ClientResponse::Read { applied, values }
            }
            Some((_, LocalRead::Behind { applied })) => ClientResponse::Behind { applied },
            None => ClientResponse::Unavailable {
                reason: "the local read was not answered".into(),
            },
        }
    }
}
