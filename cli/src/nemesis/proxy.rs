//! The nemesis's network: one userspace TCP proxy in front of each pair of nodes, which it
//! can cut (both ways) and heal. A node links to each peer over one connection, dialled by
//! the lower id (`impl/src/node/mod.rs`, `link_peers`), so node `lo` dials `hi` through the
//! proxy of the pair `(lo, hi)` (`physalia node --dial`) and cutting that proxy cuts the
//! pair both ways. Clients reach the nodes directly: a partition separates nodes, not the
//! clients from them. Loopback only.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Most connections one pair's proxy carries at once (a node keeps one per pair; the rest
/// are redials racing a closing one). Further connections are closed at once.
pub const MAX_CONNS_PER_PAIR: usize = 8;

/// How long the proxy waits for the node behind it to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pairs currently cut, and a generation that changes with every cut or heal (each
/// proxied connection watches it and closes when its pair is cut).
pub struct Partitions {
    cut: Mutex<BTreeSet<(u32, u32)>>,
    changed: watch::Sender<u64>,
}

impl Partitions {
    /// No pair cut.
    pub fn new() -> Arc<Partitions> {
        Arc::new(Partitions {
            cut: Mutex::new(BTreeSet::new()),
            changed: watch::channel(0).0,
        })
    }

    fn pair(a: u32, b: u32) -> (u32, u32) {
        (a.min(b), a.max(b))
    }

    /// Whether the pair `a`, `b` is cut.
    pub fn is_cut(&self, a: u32, b: u32) -> bool {
        self.cut
            .lock()
            .map(|c| c.contains(&Self::pair(a, b)))
            .unwrap_or(true)
    }

    /// Cuts every pair with one node in `side` and the other not, among `nodes`.
    pub fn split(&self, side: &BTreeSet<u32>, nodes: u32) {
        if let Ok(mut c) = self.cut.lock() {
            for a in side {
                for b in (0..nodes).filter(|b| !side.contains(b)) {
                    c.insert(Self::pair(*a, b));
                }
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// Heals every pair.
    pub fn heal(&self) {
        if let Ok(mut c) = self.cut.lock() {
            c.clear();
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// The pairs cut now.
    pub fn cut_pairs(&self) -> usize {
        self.cut.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// Serves the proxy of the pair `(lo, hi)` on `listener`, forwarding to `target` (node
/// `hi`'s listen address) while the pair is not cut. Runs until the runtime stops.
pub async fn serve(lo: u32, hi: u32, listener: TcpListener, target: String, net: Arc<Partitions>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if net.is_cut(lo, hi) || active.load(Ordering::Relaxed) >= MAX_CONNS_PER_PAIR {
            drop(inbound);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (net, target, active) = (Arc::clone(&net), target.clone(), Arc::clone(&active));
        tokio::spawn(async move {
            forward(lo, hi, inbound, &target, &net).await;
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Copies both ways between `inbound` and a new connection to `target` until either side
/// closes or the pair is cut.
async fn forward(lo: u32, hi: u32, mut inbound: TcpStream, target: &str, net: &Partitions) {
    let Ok(Ok(mut outbound)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await
    else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let mut changes = net.changed.subscribe();
    let cut = async {
        loop {
            if net.is_cut(lo, hi) || changes.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        () = cut => {}
    }
}
