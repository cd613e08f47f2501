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
\* The nodes that receive their messages weakly fairly.  The reconfiguration
\* run overrides it (`Live <- ...`) to hold the joining node too: a majority
\* of the jury in force must be live before and after the change.
Live == {0, 1}
ASSUME Proposer \in Live /\ IsQuorum(Live)

\* The changes the proposer may make: replace(1,3), so that after the change
\* the new node 3 is needed for a majority of {0, 2, 3} (node 2 is not fair).
\* Used only when MaxReconfigs > 0 (`ProposableChanges <- LiveChanges`).
LiveChanges == {"replace(1,3)"}
LiveReconfig == {0, 1, 3}

\* Nodes that take no step at all (crashed for good, or cut off): none by
\* default; the reconfiguration run silences node 2 to keep its state space
\* small (`Silent <- ...`).  Nodes outside Live and Silent act, unfairly.
Silent == {}
NoSilent == {}
Silent2 == {2}
Acting == Nodes \ Silent

Elect == role[Proposer] = "Follower" /\ Timeout(Proposer)

LiveNext ==
    \/ Elect
    \/ \E n \in Acting : DeliverAccepted(n)
    \/ \E n \in Acting \ Live : Crash(n) \/ Restart(n)
    \/ \E n \in Acting : \E Q \in PromiseSets(n) : DeliverPromises(n, Q)
    \/ \E n \in Acting, m \in msgs :
          \/ DeliverPrepare(n, m)
          \/ DeliverNack(n, m)
          \/ DeliverRequest(n, m)
          \/ DeliverAccept(n, m)
          \/ DeliverCommit(n, m)
    \/ \E c \in Commands : Request(c)
    \* reconfiguration (all disabled when MaxReconfigs = 0): only the
    \* distinguished proposer changes the jury and teaches
    \/ \E n \in Acting : ProposeLearned(n) \/ ExtendPhase1(n) \/ Retire(n) \/ StepDown(n)
    \/ \E c \in ProposableChanges : Reconfigure(Proposer, c)
    \/ \E y \in Nodes : Teach(Proposer, y)

\* The distinguished proposer runs its election and leads promptly.
ProposerFairness ==
    /\ WF_vars(Elect)
    /\ WF_vars(\E Q \in PromiseSets(Proposer) : DeliverPromises(Proposer, Q))
    /\ WF_vars(\E m \in msgs : DeliverRequest(Proposer, m))
    /\ WF_vars(DeliverAccepted(Proposer))
    \* reconfiguration: re-proposing learned slots and extending phase 1 to
    \* a new jury (a change itself is never forced)
    /\ WF_vars(ProposeLearned(Proposer))
    /\ WF_vars(ExtendPhase1(Proposer))

\* The proposer teaches the live nodes (a learner, a new member below its
\* since) weakly fairly.
TeachFairness == \A y \in Live : WF_vars(Teach(Proposer, y))

\* Weakly fair delivery among the live quorum.  A re-delivery that changes
\* nothing is a stuttering step, so it never satisfies (nor is it demanded
\* by) these conditions: each one forces the delivery of a message that
\* still has an effect.
DeliveryFairness ==
    \A a \in Live :
        /\ WF_vars(\E m \in msgs : DeliverPrepare(a, m))
        /\ WF_vars(\E m \in msgs : DeliverAccept(a, m))
        /\ WF_vars(\E m \in msgs : DeliverCommit(a, m))

LiveSpec == Init /\ [][LiveNext]_vars /\ ProposerFairness /\ TeachFairness /\ DeliveryFairness

\* A sanity check that the reconfiguration run needs the new node: without
\* fair teaching, a learner may never learn that the change making it a
\* member is chosen, and the new jury {0, 2, 3} (2 silent) never has a
\* majority: TLC must find a behaviour in which an operation is never chosen.
UnfairTeachSpec == Init /\ [][LiveNext]_vars /\ ProposerFairness /\ DeliveryFairness

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
