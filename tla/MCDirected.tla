----------------------------- MODULE MCDirected -----------------------------
(***************************************************************************)
(* Directed searches for reconfiguration behaviours too deep for a plain   *)
(* breadth-first search of Next within a CI run (15 to 21 steps over 4     *)
(* nodes: a failover across a jury change, three leaders).                 *)
(*                                                                         *)
(* DirectedNext is Next with the ACTORS narrowed: only the nodes of        *)
(* Campaigners time out (in the order CampaignOrder, if it is not empty)   *)
(* and so lead, teach and propose changes; only Acceptors take in Prepare  *)
(* and Accept, and only over Links (a partition is a set of messages never *)
(* delivered); a client request reaches node n only if <<n, op>> is in     *)
(* Routes (a client with a stale discovery entry reaches an old leader);   *)
(* only Teachees are taught, only CommitLearners take in a Commit, only    *)
(* Retirees delete their copy; with Snapshots on (MCSnapshot.tla), only    *)
(* Compacters compact and send their snapshot, only Installers install     *)
(* one.  Every DirectedNext step is a Next step, so every behaviour of     *)
(* DirectedSpec is a behaviour of Spec: a violation TLC reports here is a  *)
(* real one.  Within those actors TLC still explores                       *)
(* every interleaving, every message delivery (stale ones included), every *)
(* choice of quorum, up to the bounds.  Each cfg overrides the sets        *)
(* (`Campaigners <- ...`) with the definitions at the end, and says why.   *)
(***************************************************************************)
EXTENDS MCPhysaliaCell

Campaigners == Nodes
\* The order of the elections: the k-th Timeout is by CampaignOrder[k]
\* (<< >>: any campaigner, in any order).
CampaignOrder == << >>
Acceptors == Nodes
Links == Nodes \X Nodes
Routes == Nodes \X Commands
Teachees == Nodes
CommitLearners == Nodes
Retirees == Nodes
Compacters == Nodes
Installers == Nodes

MayCampaign(n) ==
    /\ n \in Campaigners
    /\ CampaignOrder # << >> => elections < Len(CampaignOrder) /\ CampaignOrder[elections + 1] = n

DirectedNext ==
    \/ \E n \in Campaigners : MayCampaign(n) /\ Timeout(n)
    \/ \E n \in Nodes : DeliverAccepted(n) \/ Crash(n) \/ Restart(n)
    \/ \E n \in Campaigners : \E Q \in PromiseSets(n) : DeliverPromises(n, Q)
    \/ \E n \in Nodes, m \in msgs :
          \/ n \in Acceptors /\ m.type = "Prepare" /\ <<m.src, n>> \in Links /\ DeliverPrepare(n, m)
          \/ DeliverNack(n, m)
          \/ m.type = "Request" /\ <<n, m.op>> \in Routes /\ DeliverRequest(n, m)
          \/ n \in Acceptors /\ m.type = "Accept" /\ <<m.src, n>> \in Links /\ DeliverAccept(n, m)
          \/ n \in CommitLearners /\ DeliverCommit(n, m)
    \/ \E c \in Commands : Request(c)
    \/ \E n \in Campaigners :
          \/ ProposeLearned(n) \/ ExtendPhase1(n) \/ StepDown(n)
          \/ \E c \in ProposableChanges : Reconfigure(n, c)
          \/ \E y \in Teachees : Teach(n, y)
    \/ \E n \in Retirees : Retire(n)
    \* log compaction: all disabled unless Snapshots
    \/ \E n \in Compacters : SendSnapshot(n) \/ \E k \in 1 .. MaxSlot : Compact(n, k)
    \/ \E n \in Installers, m \in msgs : Install(n, m)

DirectedSpec == Init /\ [][DirectedNext]_vars

\* The actors of the directed runs (tla/README.md, "Reconfiguration").
NoNode == {}
Node3 == {3}
Nodes01 == {0, 1}
Nodes02 == {0, 2}
Nodes23 == {2, 3}
Nodes012 == {0, 1, 2}
Order01 == <<0, 1>>
Order012 == <<0, 1, 2>>
\* mutant-change-rule-own-log: 0 -> 2 (0's Prepare), 1 -> 2 (1's Prepare and
\* Accepts), 2 -> 0 (2's Prepare and Accepts); the request reaches node 1.
LinksOwnLog == {<<0, 2>>, <<1, 2>>, <<2, 0>>}
RoutesOwnLog == {<<1, c1>>}
=============================================================================
