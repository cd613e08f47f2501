------------------------------ MODULE MCScript ------------------------------
(***************************************************************************)
(* Scripted replays: counterexamples too deep for any search that fits a   *)
(* CI run (20 to 26 steps over 3 or 4 nodes, with a node leaving and       *)
(* coming back, or three leaders).  A script is a sequence of steps; step  *)
(* k names one action of Next and its arguments, and ScriptNext allows     *)
(* exactly the instances of that action TLC finds enabled in the state at  *)
(* level k (an argument left open, such as the quorum Q of                 *)
(* DeliverPromises, is explored in every way).  Every ScriptNext step is   *)
(* a Next step, so a violation TLC reports is a behaviour of Spec; the     *)
(* same script with Mutant = "none" stops at the step the correct protocol *)
(* does not allow (tla/README.md lists which).  A replay shows that a bug  *)
(* is real; it does not show, as a search does, that it is the shortest.   *)
(*                                                                         *)
(* Steps: <<"Timeout", n>>, <<"DeliverPrepare", a, src>>,                  *)
(* <<"DeliverPromises", n>>, <<"Request", c>>, <<"DeliverRequest", n, c>>, *)
(* <<"Reconfigure", n, change>>, <<"Teach", n, y>>,                        *)
(* <<"DeliverAccept", a, src, slot, cmd>>, <<"DeliverAccepted", n>>,       *)
(* <<"DeliverCommit", a, src>>, <<"ProposeLearned", n>>,                   *)
(* <<"ExtendPhase1", n>>, <<"Retire", x>>.  An Accept is named by its      *)
(* sender, slot and command (the ballot follows).                          *)
(***************************************************************************)
EXTENDS MCPhysaliaCell

CONSTANT c3
MCCommands3 == {c1, c2, c3}

Step(e) ==
    CASE e[1] = "Timeout" -> Timeout(e[2])
      [] e[1] = "DeliverPrepare" ->
            \E m \in msgs : m.type = "Prepare" /\ m.src = e[3] /\ DeliverPrepare(e[2], m)
      [] e[1] = "DeliverPromises" -> \E Q \in PromiseSets(e[2]) : DeliverPromises(e[2], Q)
      [] e[1] = "Request" -> Request(e[2])
      [] e[1] = "DeliverRequest" ->
            \E m \in msgs : m.type = "Request" /\ m.op = e[3] /\ DeliverRequest(e[2], m)
      [] e[1] = "Reconfigure" -> Reconfigure(e[2], e[3])
      [] e[1] = "Teach" -> Teach(e[2], e[3])
      [] e[1] = "DeliverAccept" ->
            \E m \in msgs : /\ m.type = "Accept" /\ m.src = e[3] /\ m.slot = e[4]
                            /\ m.cmd = e[5] /\ DeliverAccept(e[2], m)
      [] e[1] = "DeliverAccepted" -> DeliverAccepted(e[2])
      [] e[1] = "DeliverCommit" ->
            \E m \in msgs : m.type = "Commit" /\ m.src = e[3] /\ DeliverCommit(e[2], m)
      [] e[1] = "ProposeLearned" -> ProposeLearned(e[2])
      [] e[1] = "ExtendPhase1" -> ExtendPhase1(e[2])
      [] e[1] = "Retire" -> Retire(e[2])

\* The script a configuration replays (`Script <- ...`).
Script == << >>

ScriptNext ==
    LET k == TLCGet("level") IN k <= Len(Script) /\ Step(Script[k])

ScriptSpec == Init /\ [][ScriptNext]_vars

(***************************************************************************)
(* aba-rejoin: 3 nodes, alpha = 1, 2 slots; node 2 leaves and comes back.  *)
(***************************************************************************)
ScriptABA == <<
    <<"Timeout", 0>>,                                  \* 0 campaigns at (1,0)
    <<"DeliverPrepare", 1, 0>>,
    <<"DeliverPromises", 0>>,                          \* 0 leads with {0, 1}
    <<"Request", c1>>,
    <<"DeliverRequest", 0, c1>>,                       \* c1 at slot 0; only 0 accepts
    <<"Timeout", 1>>,                                  \* 1 campaigns at (2,1)
    <<"DeliverPrepare", 2, 1>>,
    <<"DeliverPromises", 1>>,                          \* {1, 2}: nothing reported
    <<"Reconfigure", 1, "remove(2)">>,                 \* slot 0
    <<"DeliverAccept", 2, 1, 0, "remove(2)">>,         \* chosen by {1, 2}
    <<"DeliverAccepted", 1>>,
    <<"DeliverCommit", 2, 1>>,                         \* 2 knows it is removed
    <<"ExtendPhase1", 1>>,                             \* slot 1 is under {0, 1}
    <<"DeliverPrepare", 0, 1>>,                        \* 0 promises (2,1) from slot 1
    <<"Reconfigure", 1, "add(2)">>,                    \* slot 1; 2 is caught up
    <<"DeliverAccept", 0, 1, 1, "add(2)">>,            \* chosen by {0, 1} of {0, 1}
    <<"DeliverAccepted", 1>>,
    <<"DeliverAccept", 0, 1, 0, "remove(2)">>,
    <<"DeliverCommit", 0, 1>>,                         \* {0, 1} committed past slot 1
    <<"Retire", 2>>,                                   \* 2 deletes its copy
    <<"Teach", 1, 2>>,                                 \* fresh copy, since = 2
    <<"DeliverAccept", 2, 0, 0, c1>>                   \* the stale Accept of slot 0
>>

(***************************************************************************)
(* config-from-unchosen: 3 nodes + 1 spare, alpha = 1, 2 slots, three      *)
(* leaders.                                                                *)
(***************************************************************************)
ScriptUnchosen == <<
    <<"Timeout", 0>>,                                  \* (1,0)
    <<"DeliverPrepare", 2, 0>>,
    <<"DeliverPromises", 0>>,                          \* {0, 2}
    <<"Teach", 0, 3>>,
    <<"Reconfigure", 0, "replace(1,3)">>,              \* slot 0, unchosen
    <<"Request", c1>>,
    <<"DeliverRequest", 0, c1>>,                       \* slot 1, jury {0, 2, 3} read from slot 0
    <<"Timeout", 1>>,                                  \* (1,1)
    <<"DeliverPrepare", 2, 1>>,
    <<"DeliverPromises", 1>>,                          \* {1, 2}
    <<"Request", c2>>,
    <<"DeliverRequest", 1, c2>>,                       \* slot 0, unchosen
    <<"Request", c3>>,
    <<"DeliverRequest", 1, c3>>,                       \* slot 1, jury {0, 1, 2} read from slot 0
    <<"DeliverAccept", 2, 1, 1, c3>>,
    <<"Timeout", 2>>,                                  \* (2,2)
    <<"DeliverPrepare", 0, 2>>,
    <<"DeliverPromises", 2>>,                          \* {0, 2}: replace(1,3) at 0, c3 at 1
    <<"DeliverAccept", 0, 2, 0, "replace(1,3)">>,      \* chosen: slot 1 is under {0, 2, 3}
    <<"DeliverAccepted", 2>>,
    <<"Teach", 2, 3>>,                                 \* 3 is a member from slot 1
    <<"DeliverAccept", 3, 0, 1, c1>>,                  \* stale: c1 chosen by {0, 3}
    <<"DeliverAccept", 3, 2, 1, c3>>                   \* c3 chosen by {2, 3}
>>
(***************************************************************************)
(* promise-across-copies (finding 2): 3 nodes + 1 spare, alpha = 1, 3      *)
(* slots; node 0 leaves (replace(0,3)) and comes back (replace(3,0)) while *)
(* node 2 leads throughout with ballot (1,2), holding a Promise from node  *)
(* 0's OLD copy.                                                           *)
(***************************************************************************)
ScriptAcrossCopies == <<
    <<"Timeout", 2>>,                                  \* (1,2)
    <<"DeliverPrepare", 0, 2>>,                        \* 0's first copy promises (1,2)
    <<"DeliverPromises", 2>>,                          \* {0, 2}
    <<"Teach", 2, 3>>,
    <<"Reconfigure", 2, "replace(0,3)">>,              \* slot 0
    <<"DeliverAccept", 0, 2, 0, "replace(0,3)">>,      \* chosen by {0, 2}
    <<"DeliverAccepted", 2>>,
    <<"Teach", 2, 3>>,                                 \* 3 is a member from slot 1
    <<"ExtendPhase1", 2>>,                             \* slot 1 is under {1, 2, 3}
    <<"DeliverPrepare", 3, 2>>,
    <<"DeliverCommit", 0, 2>>,                         \* 0 is caught up
    <<"Reconfigure", 2, "replace(3,0)">>,              \* slot 1: 0 comes back
    <<"DeliverAccept", 3, 2, 1, "replace(3,0)">>,      \* chosen by {2, 3}
    <<"DeliverAccepted", 2>>,                          \* slot 2 is under {0, 1, 2}
    <<"DeliverCommit", 3, 2>>,                         \* {2, 3} committed past slot 1
    <<"Retire", 0>>,                                   \* 0 did not learn it is back
    <<"Teach", 2, 0>>,                                 \* 0's fresh copy, since = 2
    <<"Timeout", 0>>,                                  \* the fresh copy campaigns at (1,0)
    <<"DeliverPrepare", 1, 0>>,
    <<"DeliverPromises", 0>>,                          \* {0, 1} of {0, 1, 2}
    <<"Request", c1>>,
    <<"DeliverRequest", 0, c1>>,                       \* slot 2
    <<"DeliverAccept", 1, 0, 2, c1>>,                  \* c1 chosen at (1,0)
    <<"Request", c2>>,
    <<"DeliverRequest", 2, c2>>,                       \* 2 counts the OLD copy's promise
    <<"DeliverAccept", 0, 2, 2, c2>>                   \* c2 chosen at (1,2) by {0, 2}
>>
=============================================================================
