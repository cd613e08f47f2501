--------------------------- MODULE MCPhysaliaCell ---------------------------
(***************************************************************************)
(* Model-checking harness for the safety configurations (MCSafety*.cfg,    *)
(* MCReconfigSafety.cfg and the mutants, MCMutant_*.cfg).  Commands are    *)
(* model values so that TLC can permute them (CmdSymmetry); Noop and the   *)
(* jury changes are strings and never permuted.                            *)
(*                                                                         *)
(* DepthBound cuts behaviours at MaxDepth steps.  The full state space of  *)
(* even 3 nodes / 2 slots / 2 elections / 1 crash runs to millions of      *)
(* states (minutes on this machine); the bound keeps each CI run well      *)
(* under a minute.  tla/README.md records what each bound covers.          *)
(***************************************************************************)
EXTENDS PhysaliaCell, TLC
CONSTANTS c1, c2
MCCommands == {c1, c2}
CmdSymmetry == Permutations(MCCommands)
CONSTANT MaxDepth
DepthBound == TLCGet("level") <= MaxDepth

\* Jury changes the reconfiguration runs let a leader propose: the spec
\* defines add, remove and replace, and `ProposableChanges <- ...` narrows
\* them to keep state spaces small.
\* Node 2 moves onto the spare 3 (3 nodes + 1 spare).
Move23 == {"replace(2,3)"}
\* Node 1 moves onto the spare 3.
Move13 == {"replace(1,3)"}
\* Node 0 moves onto the spare 3 and back.
Move03Back == {"replace(0,3)", "replace(3,0)"}
\* Node 2 leaves and comes back (3 nodes).
RemoveAdd2 == {"remove(2)", "add(2)"}
\* Two removals (3 nodes).
Removes12 == {"remove(1)", "remove(2)"}

\* Log compaction and snapshot install switched on (`Snapshots <- SnapshotsOn`).
SnapshotsOn == TRUE

(***************************************************************************)
(* Witnesses.  Each says that something interesting NEVER happens, and the *)
(* MCWitness_*.cfg runs expect TLC to refute it within the same bounds as  *)
(* the safety runs.  They show that the bounds reach the behaviours the    *)
(* invariants are about, so that a "pass" of MCSafety*.cfg is not vacuous. *)
(***************************************************************************)

\* A follower learns a commit from a Commit message (CommittedPrefix bites).
NeverFollowerCommits == \A n \in Nodes : role[n] = "Follower" => commit[n] = 0

\* A leader commits every slot (pipelining, commit over a prefix).
NeverAllSlotsCommitted == \A n \in Nodes : commit[n] < MaxSlot

\* A chosen command is chosen again at a higher ballot: a second leader
\* learned it from the promises and re-proposed it (the Agreement argument).
NeverRechosen == \A v, w \in votes :
    /\ v[1] = w[1]
    /\ IsMajority(VotersAt(v[1], v[2], v[3]), ConfigAt(v[1]))
    /\ IsMajority(VotersAt(w[1], w[2], w[3]), ConfigAt(w[1]))
    => v[2] = w[2]

\* The same, after a crash.
NeverRechosenAfterCrash == crashes = 0 \/ NeverRechosen

\* A jury change takes effect and a client command commits under the new
\* jury: some node has committed a client operation at a slot whose
\* configuration is not the initial jury (reconfiguration is not vacuous).
NeverChangeInForce ==
    \A n \in Nodes, s \in Slots :
        s < commit[n] /\ log[n][s].cmd \in Commands => ConfigAt(s) = InitJury

\* A node installs a snapshot that moves its commit index forward and sets
\* its base to it (the snapshot runs reach Install).  Compact leaves commit
\* alone; Teach, which may raise both too, runs only with reconfiguration.
\* An action property.
NeverInstall ==
    [][\A n \in Nodes : ~(/\ commit'[n] > commit[n]
                          /\ base'[n] > base[n]
                          /\ base'[n] = commit'[n])]_vars
=============================================================================
