----------------------------- MODULE MCLiveness -----------------------------
(***************************************************************************)
(* Liveness of one cell under a stable distinguished proposer.             *)
(*                                                                         *)
(* The claim: once the elections stop and one node (Proposer) leads, and a *)
(* quorum Live of nodes (Proposer among them) is up and receives its       *)
(* messages weakly fairly, every operation a client submits is eventually *)
(* chosen and acknowledged.  Nothing is promised for nodes outside Live:   *)
(* they may crash, restart, or sit on their messages forever.              *)
(*                                                                         *)
(* "Elections stop" is modelled by letting only Proposer time out, and     *)
(* only as a Follower, so exactly one election happens.  Safety does not  *)
(* need this restriction (MCPhysaliaCell checks the full Next); liveness   *)
(* does, since FLP rules out progress with duelling proposers.             *)
(***************************************************************************)
EXTENDS PhysaliaCell, TLC

CONSTANTS c1, c2
MCCommands == {c1, c2}

Proposer == 0
Live == {0, 1}
ASSUME Proposer \in Live /\ IsQuorum(Live)

Elect == role[Proposer] = "Follower" /\ Timeout(Proposer)

LiveNext ==
    \/ Elect
    \/ \E n \in Nodes : DeliverAccepted(n)
    \/ \E n \in Nodes \ Live : Crash(n) \/ Restart(n)
    \/ \E n \in Nodes, Q \in MinQuorums : DeliverPromises(n, Q)
    \/ \E n \in Nodes, m \in msgs :
          \/ DeliverPrepare(n, m)
          \/ DeliverNack(n, m)
          \/ DeliverRequest(n, m)
          \/ DeliverAccept(n, m)
          \/ DeliverCommit(n, m)
    \/ \E c \in Commands : Request(c)

\* The distinguished proposer runs its election and leads promptly.
ProposerFairness ==
    /\ WF_vars(Elect)
    /\ WF_vars(\E Q \in MinQuorums : DeliverPromises(Proposer, Q))
    /\ WF_vars(\E m \in msgs : DeliverRequest(Proposer, m))
    /\ WF_vars(DeliverAccepted(Proposer))

\* Weakly fair delivery among the live quorum.  A re-delivery that changes
\* nothing is a stuttering step, so it never satisfies (nor is it demanded
\* by) these conditions: each one forces the delivery of a message that
\* still has an effect.
DeliveryFairness ==
    \A a \in Live :
        /\ WF_vars(\E m \in msgs : DeliverPrepare(a, m))
        /\ WF_vars(\E m \in msgs : DeliverAccept(a, m))
        /\ WF_vars(\E m \in msgs : DeliverCommit(a, m))

LiveSpec == Init /\ [][LiveNext]_vars /\ ProposerFairness /\ DeliveryFairness

\* A sanity check that the liveness property is not vacuous: without fair
\* delivery of Accept among the live quorum, TLC must find a behaviour in
\* which a submitted operation is never chosen.
UnfairAcceptSpec ==
    Init /\ [][LiveNext]_vars /\ ProposerFairness
    /\ \A a \in Live : WF_vars(\E m \in msgs : DeliverPrepare(a, m))

Submitted(c) == [type |-> "Request", op |-> c] \in msgs

\* Every submitted operation is eventually chosen in some slot ...
EventuallyChosen == \A c \in Commands : Submitted(c) ~> \E s \in Slots : ChosenAt(s, c)

\* ... and eventually acknowledged to its client.
EventuallyReplied == \A c \in Commands : Submitted(c) ~> [type |-> "Reply", op |-> c] \in msgs
=============================================================================
