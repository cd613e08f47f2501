---------------------------- MODULE PhysaliaCell ----------------------------
(***************************************************************************)
(* One Physalia cell: Multi-Paxos with a distinguished proposer, as        *)
(* described in docs/protocol.md.  Names follow the project vocabulary     *)
(* (../shared/DESIGN.md): Prepare, Promise, Nack, Accept, Accepted,        *)
(* Commit, Request, Reply, Timeout, Crash, Restart.                        *)
(*                                                                         *)
(* The network is the set `msgs` of every message ever sent.  A message is *)
(* never removed, so any message may be delivered zero times (loss), many  *)
(* times (duplication) and in any order (reordering) without a single      *)
(* fault action.  Every handler is written so that delivering the same     *)
(* message twice is harmless; that is the only thing the set asks of us.   *)
(* It also means that a message of an old jury or an old copy of a node    *)
(* stays deliverable forever: stale membership and ABA are real here.      *)
(*                                                                         *)
(* The ghost variable `votes` records every (slot, ballot, command, node)  *)
(* acceptance ever made, durable or not.  A command is *chosen* at a slot  *)
(* when a majority of the configuration of THAT slot voted for it at one   *)
(* ballot.  Safety is stated over `votes`, not over what nodes remember: a *)
(* node that forgets a vote (the `accepted-not-durable` mutant, or a       *)
(* removed node deleting its copy) does not un-choose a command.           *)
(*                                                                         *)
(* Reconfiguration (docs/protocol.md, "Reconfiguration: the jury changes   *)
(* through the log") is part of this one protocol: with MaxReconfigs = 0   *)
(* and Alpha = MaxSlot every action added for it is disabled and every     *)
(* configuration behaves exactly as before it existed.                     *)
(*                                                                         *)
(* Log compaction (snapshots) is part of it too: a node folds a committed  *)
(* prefix of its log into a snapshot (Compact), any node may send its      *)
(* snapshot (Snapshot messages), and a node behind installs it (Install).  *)
(* With Snapshots = FALSE (the default; a definition the configurations    *)
(* override with `Snapshots <- SnapshotsOn`) every action added for it is  *)
(* disabled, every guard it adds is true, and every configuration behaves  *)
(* exactly as before it existed.                                           *)
(*                                                                         *)
(* The CONSTANT `Mutant` switches on one broken variant of the protocol;   *)
(* "none" is the correct protocol.  The names are those of the mutant      *)
(* table in docs/protocol.md; tla/README.md lists the invariant each one   *)
(* must violate.                                                           *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Sequences, TLC

CONSTANTS
    N,           \* nodes in the initial jury: 0..N-1
    Spares,      \* nodes outside the initial jury that may join: N..N+Spares-1
    Commands,    \* opaque client operations Op(client, seq); consensus never looks inside
    MaxRound,    \* bound: no node stands with a round above MaxRound
    MaxSlot,     \* bound: slots are 0..MaxSlot-1
    MaxCrashes,  \* bound: at most this many Crash steps in a behaviour
    MaxElections,\* bound: at most this many election Timeouts in a behaviour
    Alpha,       \* α: the pipeline window, and the delay of a jury change
    MaxReconfigs,\* bound: at most this many jury changes proposed in a behaviour
    Mutant       \* "none" or the name of one broken variant (docs/protocol.md)

InitJury == 0 .. N-1
Nodes == 0 .. N+Spares-1
Slots == 0 .. MaxSlot-1

Mutants == {"none", "accept-lower-ballot", "ignore-promised-values",
            "commit-on-minority", "promise-not-durable",
            "accepted-not-durable", "ballot-not-unique", "skip-prepare",
            "promise-omits-accepted", "reply-before-commit",
            \* reconfiguration (docs/protocol.md, issue 11)
            "config-effective-early", "config-from-unchosen",
            "concurrent-changes", "phase1-old-jury", "stale-member-votes",
            "aba-rejoin",
            \* the text of docs/protocol.md where this spec had to deviate
            \* from it to be safe (tla/README.md, "Findings")
            "change-rule-own-log", "promise-across-copies",
            \* log compaction and snapshot install (tla/README.md, "Snapshots")
            "stale-snapshot", "promise-below-base"}

ASSUME N \in Nat \ {0} /\ Spares \in Nat /\ MaxRound \in Nat /\ MaxSlot \in Nat
ASSUME MaxCrashes \in Nat /\ MaxElections \in Nat /\ Mutant \in Mutants
ASSUME Alpha \in Nat \ {0} /\ MaxReconfigs \in Nat

Noop == "Noop"
ASSUME Noop \notin Commands

\* Log compaction and snapshot install (Compact, SendSnapshot, Install) on or
\* off.  A definition, not a CONSTANT, so that the configurations that
\* predate it need not name it; the snapshot runs override it
\* (`Snapshots <- SnapshotsOn`, MCPhysaliaCell.tla).
Snapshots == FALSE

Min(a, b) == IF a < b THEN a ELSE b
Max(a, b) == IF a < b THEN b ELSE a
SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x
SetMin(S) == CHOOSE x \in S : \A y \in S : x <= y

(***************************************************************************)
(* Ballots are (round, node) pairs ordered lexicographically.  A node only *)
(* ever proposes with its own id, so two nodes never share a ballot: the   *)
(* `ballot-not-unique` mutant drops the node id, which is exactly what     *)
(* makes two leaders able to propose different commands at one ballot.     *)
(***************************************************************************)
Ballots == (0 .. MaxRound) \X Nodes
ZeroBallot == <<0, 0>>

BLess(a, b) == a[1] < b[1] \/ (a[1] = b[1] /\ a[2] < b[2])
BLeq(a, b)  == a = b \/ BLess(a, b)
BMax(a, b)  == IF BLess(a, b) THEN b ELSE a

MkBallot(r, n) == IF Mutant = "ballot-not-unique" THEN <<r, 0>> ELSE <<r, n>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Jury changes.  A change is a command of the log, so it is a value like  *)
(* Noop: the string "add(y)", "remove(x)" or "replace(x,y)" (strings, so   *)
(* that TLC can compare it with Noop and with the client operations).      *)
(* ChangeInfo decodes it into <<kind, leaving, joining>>.  A change is     *)
(* *valid* at slot i if it fits the jury after every change before i:      *)
(* add of a non-member to fewer than 7 members, remove of a member from    *)
(* more than one, replace of a member by a non-member.  An invalid change  *)
(* is applied as a no-op (its result is ok = false; every operation is     *)
(* fully specified).                                                       *)
(***************************************************************************)
MaxJury == 7

ChangeRecs ==
         {<<"add", y, y>> : y \in Nodes}
    \cup {<<"remove", x, x>> : x \in Nodes}
    \cup {<<"replace", p[1], p[2]>> : p \in {q \in Nodes \X Nodes : q[1] # q[2]}}

ChangeName(r) ==
    IF r[1] = "replace"
      THEN "replace(" \o ToString(r[2]) \o "," \o ToString(r[3]) \o ")"
      ELSE r[1] \o "(" \o ToString(r[2]) \o ")"

Changes == {ChangeName(r) : r \in ChangeRecs}
ChangeInfo == [c \in Changes |-> CHOOSE r \in ChangeRecs : ChangeName(r) = c]

\* The changes a leader may propose.  The TLC configurations may narrow it
\* (`ProposableChanges <- ...`, e.g. to replace only) to keep state spaces small.
ProposableChanges == Changes

IsChange(c) == c \in Changes

\* The node a change makes a member (add, replace), if any.
Joining(c) == IF ChangeInfo[c][1] = "remove" THEN {} ELSE {ChangeInfo[c][3]}
\* The node a change removes (remove, replace), if any.
Leaving(c) == IF ChangeInfo[c][1] = "add" THEN {} ELSE {ChangeInfo[c][2]}

ValidIn(J, c) ==
    LET r == ChangeInfo[c] IN
    CASE r[1] = "add"     -> r[3] \notin J /\ Cardinality(J) < MaxJury
      [] r[1] = "remove"  -> r[2] \in J /\ Cardinality(J) > 1
      [] r[1] = "replace" -> r[2] \in J /\ r[3] \notin J

\* The jury after applying command c (a change or anything else) to J.
Apply(J, c) == IF IsChange(c) /\ ValidIn(J, c) THEN (J \ Leaving(c)) \cup Joining(c) ELSE J

\* The jury after applying the commands f[0], ..., f[k-1] in slot order.
RECURSIVE FoldJury(_, _)
FoldJury(f, k) == IF k = 0 THEN InitJury ELSE Apply(FoldJury(f, k - 1), f[k - 1])

\* The delay after which a change chosen at slot i is in force: i + Alpha.
\* config-effective-early: the nodes take it into force at i + 1, in the
\* middle of the pipeline (the ghost below keeps the protocol's i + Alpha).
Delay == IF Mutant = "config-effective-early" THEN 1 ELSE Alpha

-----------------------------------------------------------------------------
(* Quorums: a majority of a jury.  Any two majorities of one jury intersect:
   every safety argument below rests on that single fact, per slot. *)

IsMajority(S, J) == 2 * Cardinality(S \cap J) > Cardinality(J)

\* A majority of the initial jury (the quorum of every slot while no change is chosen).
IsQuorum(S) == IsMajority(S, InitJury)

\* The quorum a leader waits for before it commits a slot of jury J: a
\* majority of J, or, in the `commit-on-minority` mutant, any non-empty set
\* (itself alone).  stale-member-votes: the votes are counted whoever cast
\* them, a removed node's too.
IsCommitQuorum(S, J) ==
    CASE Mutant = "commit-on-minority" -> S # {}
      [] Mutant = "stale-member-votes" -> 2 * Cardinality(S) > Cardinality(J)
      [] OTHER                         -> IsMajority(S, J)

Cmds == Commands \cup {Noop} \cup Changes
Entry == [bal : Ballots, cmd : Cmds]
None == [bal |-> <<0, 0>>, cmd |-> "None"]   \* an empty log position
Roles == {"Follower", "Candidate", "Leader"}
\* A node's copy of the cell: none (a spare, or deleted after its removal),
\* a learner being taught (never votes, never promises), or a member copy.
Copies == {"none", "learner", "member"}

\* An accepted entry as a Promise reports it.
Report == [slot : Slots, bal : Ballots, cmd : Cmds]

\* A snapshot's values: the commands at slots 0 .. k-1, for some k >= 1.
SnapCmds == UNION {[0 .. k - 1 -> Cmds] : k \in 1 .. MaxSlot}

Message ==
         [type : {"Prepare"}, bal : Ballots, from : 0 .. MaxSlot, src : Nodes]
    \cup [type : {"Promise"}, bal : Ballots, from : 0 .. MaxSlot,
          accepted : SUBSET Report, src : Nodes, dst : Nodes]
    \cup [type : {"Nack"}, bal : Ballots, promised : Ballots,
          src : Nodes, dst : Nodes]
    \cup [type : {"Accept"}, bal : Ballots, slot : Slots, cmd : Cmds, src : Nodes]
    \cup [type : {"Accepted"}, bal : Ballots, slot : Slots, src : Nodes, dst : Nodes]
    \cup [type : {"Commit"}, bal : Ballots, up_to : 0 .. MaxSlot, src : Nodes]
    \cup [type : {"Request"}, op : Commands]
    \cup [type : {"Reply"}, op : Commands \cup Changes]
    \cup [type : {"Snapshot"}, base : 1 .. MaxSlot, cmds : SnapCmds]

VARIABLES
    \* durable: they survive Crash/Restart
    promised,   \* promised[n]: the highest ballot n promised
    log,        \* log[n][s]: the entry n accepted last at slot s, or None;
                \* below base[n] the snapshot's command (a compacted position)
    base,       \* base[n]: slots < base[n] are compacted into n's snapshot
    copy,       \* copy[n] \in Copies: whether n holds a copy of the cell, and which
    since,      \* since[n]: n's copy votes and promises only for slots >= since[n]
    \* volatile: Crash loses them
    role,       \* role[n] \in Roles
    ballot,     \* ballot[n]: the ballot n stands or leads with
    commit,     \* commit[n]: slots < commit[n] are known chosen
    up,         \* up[n]: FALSE between Crash and Restart
    \* the network
    msgs,
    \* ghosts and bounds
    votes,      \* every acceptance <<slot, ballot, command, node>> ever made
    crashes,    \* how many Crash steps happened
    elections,  \* how many election Timeouts happened
    reconfigs   \* how many jury changes were proposed

vars == <<promised, log, base, copy, since, role, ballot, commit, up, msgs, votes,
          crashes, elections, reconfigs>>

TypeOK ==
    /\ promised \in [Nodes -> Ballots]
    /\ log \in [Nodes -> [Slots -> Entry \cup {None}]]
    /\ base \in [Nodes -> 0 .. MaxSlot]
    /\ copy \in [Nodes -> Copies]
    /\ since \in [Nodes -> 0 .. MaxSlot + Alpha]
    /\ role \in [Nodes -> Roles]
    /\ ballot \in [Nodes -> Ballots]
    /\ commit \in [Nodes -> 0 .. MaxSlot]
    /\ up \in [Nodes -> BOOLEAN]
    /\ msgs \subseteq Message
    /\ votes \subseteq Slots \X Ballots \X Cmds \X Nodes
    /\ crashes \in 0 .. MaxCrashes
    /\ elections \in 0 .. MaxElections
    /\ reconfigs \in 0 .. MaxReconfigs

-----------------------------------------------------------------------------
(* Helpers *)

Send(m) == msgs' = msgs \cup {m}
SendAll(M) == msgs' = msgs \cup M

\* The entries of n's log at slots >= from, as a Promise carries them.  A
\* compacted position (below base[n]) holds no vote and is never reported;
\* n promises only for a from >= base[n] anyway (DeliverPrepare).
Reported(n, from) ==
    { [slot |-> s, bal |-> log[n][s].bal, cmd |-> log[n][s].cmd] :
        s \in {t \in Slots : t >= from /\ t >= base[n] /\ log[n][t] # None} }

\* The commands in n's log, whatever their ballot.
LogCmds(n) == {log[n][s].cmd : s \in {t \in Slots : log[n][t] # None}}

\* The nodes from which leader n knows slot s is accepted at its ballot:
\* itself, when its own log holds its ballot at s, and every acceptor whose
\* Accepted for (ballot[n], s) reached n.
AcceptedBy(n, s) ==
    (IF log[n][s] # None /\ log[n][s].bal = ballot[n] THEN {n} ELSE {})
    \cup {m.src : m \in {m \in msgs : /\ m.type = "Accepted"
                                      /\ m.dst = n
                                      /\ m.bal = ballot[n]
                                      /\ m.slot = s}}

-----------------------------------------------------------------------------
(***************************************************************************)
(* A node's own view of the jury, from its log.                            *)
(*                                                                         *)
(* ViewConfig(n, s) is config(s) as n computes it: the initial jury with   *)
(* the changes at slots <= s - Alpha of n's log applied in slot order.     *)
(* Every correct use below is at a slot s < commit[n] + Alpha (the         *)
(* pipeline window), where those slots are all < commit[n]: committed, so  *)
(* chosen, so the value is the same at every node (nothing a node acts on  *)
(* depends on an unchosen entry).  config-from-unchosen drops the window,  *)
(* and the same expression then reads accepted but unchosen entries.       *)
(***************************************************************************)
LogCmd(n) == [j \in Slots |-> log[n][j].cmd]

ViewConfig(n, s) ==
    IF MaxReconfigs = 0 THEN InitJury
    ELSE FoldJury(LogCmd(n), Min(MaxSlot, Max(0, s - Delay + 1)))

\* The jury after every change n has committed (the latest jury it knows).
LatestJury(n) == IF MaxReconfigs = 0 THEN InitJury ELSE FoldJury(LogCmd(n), commit[n])

\* The jury after every change in n's log below slot s, committed or not.
LogJuryBelow(n, s) == IF MaxReconfigs = 0 THEN InitJury ELSE FoldJury(LogCmd(n), s)

\* n knows config(s) from its committed prefix.
KnowsConfig(n, s) == s - Delay < commit[n]

\* The first slot of the configuration that governs s, in n's view.
ConfigStart(n, s) ==
    CHOOSE t \in 0 .. s :
        /\ \A u \in t .. s : ViewConfig(n, u) = ViewConfig(n, s)
        /\ t = 0 \/ ViewConfig(n, t - 1) # ViewConfig(n, s)

\* The first slot after the pipeline window: a leader proposes at s only
\* while s < commit[n] + Alpha.
WindowEnd(n) == IF Mutant = "config-from-unchosen" THEN MaxSlot ELSE commit[n] + Alpha

-----------------------------------------------------------------------------
(***************************************************************************)
(* Chosen: the ground truth that every invariant is stated against.        *)
(*                                                                         *)
(* GhostConfig[s + 1] is config(s): the initial jury with every valid      *)
(* change CHOSEN at a slot j <= s - Alpha applied in slot order (a change  *)
(* chosen at i is in force at i + Alpha).  It is defined slot by slot:     *)
(* config(s) = Apply(config(s - 1), the command chosen at s - Alpha), and  *)
(* the command chosen at s - Alpha is the one a majority of config(s -     *)
(* Alpha) voted at one ballot, so the recursion only looks at earlier      *)
(* slots.  (If a mutant makes two commands chosen at one slot, CHOOSE      *)
(* picks one; Agreement is then violated anyway.)                          *)
(***************************************************************************)
VotersAt(s, b, c) == {v[4] : v \in {v \in votes : v[1] = s /\ v[2] = b /\ v[3] = c}}

\* The command chosen at slot j under jury J (Noop if none yet).
GhostCmd(j, J) ==
    LET C == {v[3] : v \in {v \in votes : v[1] = j /\ IsMajority(VotersAt(j, v[2], v[3]), J)}}
    IN IF C = {} THEN Noop ELSE CHOOSE c \in C : TRUE

RECURSIVE GhostConfigs(_)
GhostConfigs(k) ==
    IF k = 0 THEN << >>
    ELSE LET prev == GhostConfigs(k - 1)
             s == k - 1
         IN Append(prev, IF s < Alpha THEN InitJury
                         ELSE Apply(prev[s], GhostCmd(s - Alpha, prev[s - Alpha + 1])))

GhostConfig ==
    IF MaxReconfigs = 0 THEN [i \in 1 .. MaxSlot |-> InitJury] ELSE GhostConfigs(MaxSlot)

ConfigAt(s) == GhostConfig[s + 1]

\* The set of <<slot, command>> pairs chosen so far.
Chosen ==
    IF MaxReconfigs = 0
      THEN { <<v[1], v[3]>> : v \in {v \in votes : IsQuorum(VotersAt(v[1], v[2], v[3]))} }
      ELSE LET cfg == GhostConfig
           IN { <<v[1], v[3]>> : v \in {v \in votes : IsMajority(VotersAt(v[1], v[2], v[3]), cfg[v[1] + 1])} }

ChosenAt(s, c) == <<s, c>> \in Chosen

-----------------------------------------------------------------------------
(***************************************************************************)
(* Phase 1 across a change (docs/protocol.md, "the rule").  Leader n with  *)
(* ballot b may propose -- or re-propose a learned value -- at slot s only *)
(* once a majority of config(s) has promised b with a Promise whose from   *)
(* <= s (its own promise counts if it is a member and s >= since[n]).      *)
(*                                                                         *)
(* Promises are per COPY, not per node (finding 2 in tla/README.md): a     *)
(* Promise counts for s only if its sender has been a member of config(t)  *)
(* for every t in [from, s].  A node removed and added back is a fresh     *)
(* copy that does not hold the old copy's promise, and the old Promise     *)
(* stays in `msgs` forever; promise-across-copies counts it anyway, as the *)
(* text of docs/protocol.md does.                                          *)
(***************************************************************************)
PromisesTo(n) == {m \in msgs : m.type = "Promise" /\ m.dst = n /\ m.bal = ballot[n]}

PromiseCounts(n, a, s) ==
    IF a = n
      THEN promised[n] = ballot[n] /\ (s >= since[n] \/ Mutant = "aba-rejoin")
      ELSE \E m \in msgs :
              /\ m.type = "Promise" /\ m.dst = n /\ m.src = a /\ m.bal = ballot[n]
              /\ m.from <= s
              /\ \/ Mutant = "promise-across-copies"
                 \/ \A t \in m.from .. s : a \in ViewConfig(n, t)

\* The members of jury J that promised n's ballot for slot s.
Promisers(n, s, J) == {a \in J : PromiseCounts(n, a, s)}

\* The first slot n's campaign for ballot[n] asked promises from (its commit
\* index when it timed out): the lowest `from` of its Prepares at that ballot.
ElectFrom(n) ==
    LET F == {m.from : m \in {m \in msgs : m.type = "Prepare" /\ m.src = n /\ m.bal = ballot[n]}}
    IN IF F = {} THEN 0 ELSE SetMin(F)

\* phase1-old-jury: the promises of a majority of the jury of the slot the
\* campaign started at are taken to cover every slot, under any later jury.
Ready(n, s) ==
    CASE Mutant = "skip-prepare"    -> TRUE
      [] Mutant = "phase1-old-jury" ->
            LET J == ViewConfig(n, ElectFrom(n)) IN IsMajority(Promisers(n, ElectFrom(n), J), J)
      [] OTHER ->
            LET J == ViewConfig(n, s) IN IsMajority(Promisers(n, s, J), J)

\* n may act at s at all: its copy votes there (since) and it is a member
\* of config(s).  A leader that is not a member of config(s) proposes no
\* slot >= s (it steps down: StepDown).
CanPropose(n, s) ==
    /\ s >= since[n] \/ Mutant = "aba-rejoin"
    /\ n \in ViewConfig(n, s)

\* What leader n learned about slot t: the entries the promises to its
\* ballot report there, and its own entry if it is not at its ballot.
Reps(n, t) ==
    {e \in UNION {m.accepted : m \in PromisesTo(n)} : e.slot = t}
    \cup (IF log[n][t] # None /\ log[n][t].bal # ballot[n]
            THEN {[slot |-> t, bal |-> log[n][t].bal, cmd |-> log[n][t].cmd]}
            ELSE {})

\* A fresh value may go to slot s: inside the window n won with, that is
\* what DeliverPromises checked (every reported slot is already re-proposed);
\* beyond it, only above every slot n learned a value for.
FreshOK(n, s) ==
    \/ Alpha >= MaxSlot
    \/ s < ElectFrom(n) + Alpha
    \/ \A t \in Slots : t >= s => Reps(n, t) = {}

\* The first slot at or after commit[n] with nothing in n's log.
FreeSlot(n) ==
    CHOOSE t \in Slots : /\ t >= commit[n] /\ log[n][t] = None
                         /\ \A u \in Slots : (u >= commit[n] /\ log[n][u] = None) => t <= u

HasFreeSlot(n) == \E s \in Slots : s >= commit[n] /\ log[n][s] = None

\* n may propose a new value (a client operation, a change) at slot s.
CanProposeFresh(n, s) ==
    /\ s < WindowEnd(n)
    /\ CanPropose(n, s)
    /\ Ready(n, s)
    /\ FreshOK(n, s)

-----------------------------------------------------------------------------
Init ==
    /\ promised = [n \in Nodes |-> ZeroBallot]
    /\ log = [n \in Nodes |-> [s \in Slots |-> None]]
    /\ base = [n \in Nodes |-> 0]
    /\ copy = [n \in Nodes |-> IF n \in InitJury THEN "member" ELSE "none"]
    /\ since = [n \in Nodes |-> 0]
    /\ role = [n \in Nodes |-> "Follower"]
    /\ ballot = [n \in Nodes |-> ZeroBallot]
    /\ commit = [n \in Nodes |-> 0]
    /\ up = [n \in Nodes |-> TRUE]
    /\ msgs = {}
    /\ votes = {}
    /\ crashes = 0
    /\ elections = 0
    /\ reconfigs = 0

-----------------------------------------------------------------------------
(***************************************************************************)
(* Timeout(n), kind election: a node that does not lead starts an election *)
(* with a ballot above every round it knows.  It persists `promised` to    *)
(* its own ballot before sending Prepare, so it will never accept anything *)
(* from a lower ballot while a candidate: its own promise is one of the    *)
(* quorum it counts in DeliverPromises, and must be as binding as anyone   *)
(* else's.  `from` = commit[n]: slots below it are chosen and known to n,  *)
(* so it needs no report of them.  Only a member copy campaigns, and only  *)
(* if it is a member of config(c) or config(c + Alpha - 1), the juries of  *)
(* its window (a node with a stale view, e.g. after a restart, may think   *)
(* it still is one: that is the stale-proposer hazard, and safe).  The     *)
(* Prepare goes to everyone; only the members of those juries count.       *)
(*                                                                         *)
(* skip-prepare: the node declares itself Leader at once.  It then never   *)
(* learns what a quorum accepted, and may overwrite a chosen slot.         *)
(***************************************************************************)
Timeout(n) ==
    LET r == SetMax({promised[n][1], ballot[n][1]}) + 1
        b == MkBallot(r, n)
    IN /\ up[n]
       /\ copy[n] = "member"
       /\ role[n] # "Leader"
       /\ n \in ViewConfig(n, commit[n]) \cup ViewConfig(n, commit[n] + Alpha - 1)
       /\ r <= MaxRound
       /\ elections < MaxElections
       /\ elections' = elections + 1
       /\ promised' = [promised EXCEPT ![n] = b]
       /\ ballot' = [ballot EXCEPT ![n] = b]
       /\ IF Mutant = "skip-prepare"
            THEN /\ role' = [role EXCEPT ![n] = "Leader"]
                 /\ UNCHANGED msgs
            ELSE /\ role' = [role EXCEPT ![n] = "Candidate"]
                 /\ Send([type |-> "Prepare", bal |-> b, from |-> commit[n], src |-> n])
       /\ UNCHANGED <<base, log, copy, since, commit, up, votes, crashes, reconfigs>>

(***************************************************************************)
(* Deliver(Prepare) at acceptor a.  Promising `bal` is a pledge never to   *)
(* accept a lower ballot again; it is made durable (promised is durable)   *)
(* before the Promise leaves, which is what lets the candidate treat the   *)
(* Promise as binding across a crash of a.  The Promise reports a's        *)
(* accepted entries from the candidate's `from`: the candidate needs every *)
(* slot it has not seen committed, because any of them may hold a chosen   *)
(* command (promise-omits-accepted reports only from a's own commit).      *)
(* The Promise carries the `from` it answers, so that the leader counts it *)
(* only for slots >= from.                                                 *)
(*                                                                         *)
(* A copy promises only for slots >= its since: a Prepare whose from is    *)
(* below it is ignored (docs/protocol.md, "A fresh copy never votes for    *)
(* its past"); aba-rejoin drops this guard.  A learner never promises.     *)
(*                                                                         *)
(* Snapshots: nor does a node promise for a from below its base.  It has   *)
(* compacted those slots and cannot report its votes there; a Promise      *)
(* without them would let the candidate fill chosen slots with Noop (or    *)
(* anything else reported at a lower ballot).  It ignores the Prepare;     *)
(* its snapshot is in msgs (Compact sends it, SendSnapshot re-sends), so   *)
(* the candidate installs it and asks again from its new commit index      *)
(* (Install) -- the implementation's "answer with the snapshot".           *)
(* promise-below-base: a promises whatever its base, reporting what it     *)
(* still has (its entries from max(from, base)).                           *)
(***************************************************************************)
DeliverPrepare(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Prepare"
    /\ m.src # a
    /\ copy[a] = "member"
    /\ m.from >= since[a] \/ Mutant = "aba-rejoin"
    /\ m.from >= base[a] \/ Mutant = "promise-below-base"
    /\ IF BLeq(promised[a], m.bal)
         THEN LET from == IF Mutant = "promise-omits-accepted"
                            THEN commit[a] ELSE m.from
              IN /\ promised' = [promised EXCEPT ![a] = m.bal]
                 /\ role' = IF role[a] # "Follower" /\ BLess(ballot[a], m.bal)
                              THEN [role EXCEPT ![a] = "Follower"]
                              ELSE role
                 /\ Send([type |-> "Promise", bal |-> m.bal, from |-> m.from,
                          accepted |-> Reported(a, from),
                          src |-> a, dst |-> m.src])
         ELSE /\ Send([type |-> "Nack", bal |-> m.bal, promised |-> promised[a],
                       src |-> a, dst |-> m.src])
              /\ UNCHANGED <<promised, role>>
    /\ UNCHANGED <<base, log, copy, since, ballot, commit, up, votes, crashes, elections, reconfigs>>

(***************************************************************************)
(* Deliver(Promise) at candidate n, for a set Q of promisers (n among      *)
(* them).  This is phase 2a's choice of values, and the heart of           *)
(* Agreement.  Suppose c was chosen at slot s >= commit[n] at a ballot b0  *)
(* below ballot[n].  A majority of config(s) voted for c at b0; it meets Q *)
(* in some acceptor (Q holds a majority of config(s), below), which voted  *)
(* before it promised ballot[n] (after promising it refuses b0).  Its log  *)
(* entry at s has a ballot >= b0, and it reported it because s >=          *)
(* commit[n] >= from.  By induction over the ballots between b0 and        *)
(* ballot[n], each of them proposed c at s, so the highest-ballot entry    *)
(* reported at s carries c, and re-proposing it keeps c the only choice.   *)
(* Reports from non-members are harmless: an entry at s with a ballot >=   *)
(* b0 holds c, a lower one loses to the one from the intersection.  A slot *)
(* nobody in Q reports cannot hold a chosen command (the same argument),   *)
(* so a Noop there is safe.  Slots below commit[n] are chosen and already  *)
(* in n's log; they need no proposal.                                      *)
(*                                                                         *)
(* Which Q: docs/protocol.md has the candidate win "when a majority of     *)
(* each" of config(c) and config(c + Alpha - 1) promised, the juries of    *)
(* its window [c, c + Alpha - 1].  Q must hold a majority of config(s)     *)
(* for every s of that window (the same two juries when changes are at     *)
(* least Alpha apart; if they were not, a middle jury would be missed).    *)
(* Q is minimal: a candidate wins the moment it can.  It re-proposes only  *)
(* inside the window, at every slot it may propose at (CanPropose: not     *)
(* below its since, a member of config(s)); later learned slots are        *)
(* ProposeLearned's, as its commit index advances.                         *)
(*                                                                         *)
(* ignore-promised-values: the leader proposes Noop everywhere instead.    *)
(* phase1-old-jury: a majority of config(c) alone wins.                    *)
(***************************************************************************)
CoverSlots(n) ==
    IF Mutant = "phase1-old-jury" THEN {commit[n]}
    ELSE {commit[n]} \cup {s \in Slots : commit[n] <= s /\ s < commit[n] + Alpha}

Covers(n, Q) ==
    \A s \in CoverSlots(n) :
        IsMajority({a \in Q : PromiseCounts(n, a, s)}, ViewConfig(n, s))

\* The sets a candidate may win with: itself and the nodes whose Promise to
\* its ballot reached it (the others cannot count).
PromiseSets(n) == SUBSET ({n} \cup {m.src : m \in PromisesTo(n)})

PhaseOneQuorum(n, Q) ==
    /\ n \in Q
    /\ Covers(n, Q)
    /\ \A a \in Q \ {n} : ~Covers(n, Q \ {a})

DeliverPromises(n, Q) ==
    /\ up[n]
    /\ role[n] = "Candidate"
    /\ PhaseOneQuorum(n, Q)
    /\ LET b == ballot[n]
           promises == {m \in PromisesTo(n) : m.src \in Q}
           reports == Reported(n, commit[n])
                        \cup UNION {m.accepted : m \in promises}
           learned == {e.slot : e \in reports}
           hi == IF learned = {} THEN commit[n] - 1 ELSE SetMax(learned)
           todo == {s \in Slots : /\ commit[n] <= s /\ s <= hi /\ s < WindowEnd(n)
                                  /\ CanPropose(n, s)}
           atSlot(s) == {e \in reports : e.slot = s}
           best(s) == CHOOSE e \in atSlot(s) : \A f \in atSlot(s) : BLeq(f.bal, e.bal)
           value(s) == IF Mutant = "ignore-promised-values" \/ atSlot(s) = {}
                         THEN Noop
                         ELSE best(s).cmd
       IN /\ role' = [role EXCEPT ![n] = "Leader"]
          /\ log' = [log EXCEPT ![n] =
                       [s \in Slots |-> IF s \in todo
                                          THEN [bal |-> b, cmd |-> value(s)]
                                          ELSE log[n][s]]]
          /\ votes' = votes \cup {<<s, b, value(s), n>> : s \in todo}
          /\ SendAll({[type |-> "Accept", bal |-> b, slot |-> s,
                       cmd |-> value(s), src |-> n] : s \in todo})
    /\ UNCHANGED <<base, promised, copy, since, ballot, commit, up, crashes, elections, reconfigs>>

(***************************************************************************)
(* ProposeLearned(n): as leader n's commit index advances, its window      *)
(* moves over slots it learned a value for in phase 1 (or in an extension) *)
(* but could not re-propose yet.  It re-proposes them in slot order, the   *)
(* highest-ballot entry reported or Noop in a hole, each once a majority   *)
(* of that slot's jury has promised (Ready).  Slots of the window it won   *)
(* with are DeliverPromises'; with Alpha = MaxSlot this never fires.       *)
(***************************************************************************)
ProposeLearned(n) ==
    /\ Alpha < MaxSlot      \* else every learned slot is in the window it won with
    /\ up[n]
    /\ role[n] = "Leader"
    /\ \E s \in Slots :
          /\ s >= commit[n] /\ log[n][s].bal # ballot[n]
          /\ \A u \in Slots : commit[n] <= u /\ u < s => log[n][u].bal = ballot[n]
          /\ s >= ElectFrom(n) + Alpha
          /\ s < WindowEnd(n)
          /\ CanPropose(n, s)
          /\ Ready(n, s)
          /\ \E t \in Slots : t >= s /\ Reps(n, t) # {}
          /\ LET b == ballot[n]
                 best == CHOOSE e \in Reps(n, s) : \A f \in Reps(n, s) : BLeq(f.bal, e.bal)
                 value == IF Reps(n, s) = {} \/ Mutant = "ignore-promised-values"
                            THEN Noop ELSE best.cmd
             IN /\ log' = [log EXCEPT ![n][s] = [bal |-> b, cmd |-> value]]
                /\ votes' = votes \cup {<<s, b, value, n>>}
                /\ Send([type |-> "Accept", bal |-> b, slot |-> s, cmd |-> value, src |-> n])
    /\ UNCHANGED <<base, promised, copy, since, role, ballot, commit, up, crashes, elections, reconfigs>>

(***************************************************************************)
(* ExtendPhase1(n): "before proposing at the first slot e of a             *)
(* configuration none of whose majorities has promised, it sends Prepare   *)
(* { b, from: e } to that configuration's members that have not promised   *)
(* b, and proposes there once a majority has."  The Prepare goes to        *)
(* everyone (re-promising the same ballot is harmless); the Promises that  *)
(* answer it carry from = e and count for slots >= e (Ready).              *)
(***************************************************************************)
NeedsPhase1(n, s) ==
    /\ commit[n] <= s /\ s < WindowEnd(n) /\ log[n][s].bal # ballot[n]
    /\ CanPropose(n, s) /\ ~Ready(n, s)

ExtendPhase1(n) ==
    /\ MaxReconfigs > 0     \* else the quorum n won with covers every slot
    /\ up[n]
    /\ role[n] = "Leader"
    /\ \E s \in Slots :
          /\ NeedsPhase1(n, s)
          /\ \A u \in Slots : u < s => ~NeedsPhase1(n, u)
          /\ LET p == [type |-> "Prepare", bal |-> ballot[n], from |-> ConfigStart(n, s), src |-> n]
             IN /\ p \notin msgs
                /\ Send(p)
    /\ UNCHANGED <<base, promised, log, copy, since, role, ballot, commit, up, votes,
                   crashes, elections, reconfigs>>

(***************************************************************************)
(* Deliver(Nack) at n: someone promised a higher ballot, so n's ballot can *)
(* no longer gather a quorum.  n steps down and remembers the round it     *)
(* heard, so that its next Timeout stands above it.  Safety never          *)
(* depends on Nack (a lost Nack only delays); liveness does.               *)
(***************************************************************************)
DeliverNack(n, m) ==
    /\ up[n]
    /\ m \in msgs
    /\ m.type = "Nack"
    /\ m.dst = n
    /\ role[n] # "Follower"
    /\ m.bal = ballot[n]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ ballot' = [ballot EXCEPT ![n] = <<m.promised[1], n>>]
    /\ UNCHANGED <<base, promised, log, copy, since, commit, up, msgs, votes, crashes,
                   elections, reconfigs>>

(***************************************************************************)
(* Deliver(Request) at leader n: a client operation gets the first free    *)
(* slot.  A leader proposes at most one command per slot per ballot (it    *)
(* only fills a None position of its own log), which is what makes "the   *)
(* entry at ballot b" a single value for Commit and for the Promise        *)
(* argument above.  An operation already in the log is not proposed again *)
(* (a client retry is a duplicate Request, not a new operation).  The slot *)
(* must be inside the window (so n knows config(s) from its committed      *)
(* prefix), n a member of config(s), and a majority of config(s) must have *)
(* promised n's ballot (CanProposeFresh).                                  *)
(*                                                                         *)
(* reply-before-commit: the leader acknowledges at once.                   *)
(***************************************************************************)
DeliverRequest(n, m) ==
    /\ up[n]
    /\ m \in msgs
    /\ m.type = "Request"
    /\ role[n] = "Leader"
    /\ m.op \notin LogCmds(n)
    /\ HasFreeSlot(n)
    /\ LET free == FreeSlot(n)
           b == ballot[n]
           accept == [type |-> "Accept", bal |-> b, slot |-> free, cmd |-> m.op, src |-> n]
       IN /\ CanProposeFresh(n, free)
          /\ log' = [log EXCEPT ![n][free] = [bal |-> b, cmd |-> m.op]]
          /\ votes' = votes \cup {<<free, b, m.op, n>>}
          /\ IF Mutant = "reply-before-commit"
               THEN SendAll({accept, [type |-> "Reply", op |-> m.op]})
               ELSE Send(accept)
    /\ UNCHANGED <<base, promised, copy, since, role, ballot, commit, up, crashes, elections, reconfigs>>

(***************************************************************************)
(* Reconfigure(n, c): the distinguished proposer proposes jury change c    *)
(* (requested by an operator or the control plane; the request itself is  *)
(* not modelled) at its first free slot s, like a client operation, and    *)
(* only if:                                                                *)
(*  - one change at a time: no change is at a slot in (s - Alpha, s) of    *)
(*    its log, chosen or proposed (concurrent-changes drops this), AND     *)
(*    s = commit[n]: every slot below s is committed (finding 1 in         *)
(*    tla/README.md: checking its own log is not enough, because a later   *)
(*    leader re-proposes per slot the highest-ballot entries it learns,    *)
(*    which may be changes of two different earlier leaders; only a        *)
(*    committed neighbourhood is final; change-rule-own-log drops this);   *)
(*  - c is valid against the latest jury (with the rule above, config(s)); *)
(*  - the joining node was taught first: it holds a copy whose commit      *)
(*    index reached n's (Teach).                                           *)
(***************************************************************************)
Reconfigure(n, c) ==
    /\ reconfigs < MaxReconfigs
    /\ up[n]
    /\ role[n] = "Leader"
    /\ HasFreeSlot(n)
    /\ LET s == FreeSlot(n)
           b == ballot[n]
       IN /\ s = commit[n] \/ Mutant = "change-rule-own-log"
          /\ \/ Mutant = "concurrent-changes"
             \/ \A j \in Slots : s - Alpha < j /\ j < s => ~IsChange(log[n][j].cmd)
          /\ CanProposeFresh(n, s)
          /\ ValidIn(LogJuryBelow(n, s), c)
          /\ \A y \in Joining(c) : copy[y] # "none" /\ commit[y] >= commit[n]
          /\ reconfigs' = reconfigs + 1
          /\ log' = [log EXCEPT ![n][s] = [bal |-> b, cmd |-> c]]
          /\ votes' = votes \cup {<<s, b, c, n>>}
          /\ Send([type |-> "Accept", bal |-> b, slot |-> s, cmd |-> c, src |-> n])
    /\ UNCHANGED <<base, promised, copy, since, role, ballot, commit, up, crashes, elections>>

(***************************************************************************)
(* Deliver(Accept) at acceptor a.  Accepting at bal >= promised keeps the  *)
(* promise a gave every lower ballot's candidate (PromiseMonotonic): that  *)
(* candidate assumed a would never vote below it.  The entry and the      *)
(* promise are made durable before Accepted leaves; the leader's commit    *)
(* counts the Accepted as a vote that cannot be taken back.  A copy votes  *)
(* only for slots >= its since (aba-rejoin drops this), a learner never,   *)
(* and a node that knows it is not a member of config(slot) (a removed     *)
(* node) does not vote there; the leader does not count such a vote       *)
(* anyway (DeliverAccepted), this only spares a message.                   *)
(*                                                                         *)
(* Snapshots: an Accept for a slot below base[a] is ignored.  The slot is  *)
(* chosen and compacted at a; there is nowhere to store the vote, and a    *)
(* vote a cannot report is one no later phase 1 may rely on.  Voting       *)
(* without storing would be safe (a never promises for a from at or below  *)
(* the slot again, so no candidate counts on a's report there), but it     *)
(* gains nothing: such an Accept is a re-send, or a stale one from an old  *)
(* ballot, and answering Accepted without the ballot check would let a     *)
(* stale leader commit a value that lost.  A leader behind a's base learns *)
(* the slot by installing a snapshot.                                      *)
(*                                                                         *)
(* accept-lower-ballot: a accepts below its promise (without lowering it). *)
(***************************************************************************)
DeliverAccept(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Accept"
    /\ m.src # a
    /\ copy[a] = "member"
    /\ m.slot >= since[a] \/ Mutant = "aba-rejoin"
    /\ m.slot >= base[a]
    /\ ~(KnowsConfig(a, m.slot) /\ a \notin ViewConfig(a, m.slot))
    /\ IF BLeq(promised[a], m.bal) \/ Mutant = "accept-lower-ballot"
         THEN /\ promised' = [promised EXCEPT ![a] = BMax(promised[a], m.bal)]
              /\ log' = [log EXCEPT ![a][m.slot] = [bal |-> m.bal, cmd |-> m.cmd]]
              /\ votes' = votes \cup {<<m.slot, m.bal, m.cmd, a>>}
              /\ role' = IF role[a] # "Follower" /\ BLess(ballot[a], m.bal)
                           THEN [role EXCEPT ![a] = "Follower"]
                           ELSE role
              /\ Send([type |-> "Accepted", bal |-> m.bal, slot |-> m.slot,
                       src |-> a, dst |-> m.src])
         ELSE /\ Send([type |-> "Nack", bal |-> m.bal, promised |-> promised[a],
                       src |-> a, dst |-> m.src])
              /\ UNCHANGED <<promised, log, votes, role>>
    /\ UNCHANGED <<base, copy, since, ballot, commit, up, crashes, elections, reconfigs>>

(***************************************************************************)
(* Deliver(Accepted) at leader n: once a majority of config(s) accepted    *)
(* slot s at ballot[n], the command there is chosen (that is the           *)
(* definition), so n may advance commit over the longest such prefix,     *)
(* apply in slot order, Reply to the clients (and to the operator of a     *)
(* change) and send Commit{ballot, up_to}.  Durability holds because a     *)
(* Reply leaves only for a slot a quorum accepted.  An Accepted names no   *)
(* command: it counts for the leader's command only because one ballot     *)
(* proposes one command per slot (unique ballots, one proposal per slot)   *)
(* -- ballot-not-unique breaks exactly this.  The Accepted messages are    *)
(* counted straight from `msgs`, as Lamport's Paxos does: a leader that    *)
(* crashed never counts its old ballot's votes, because Crash makes it a   *)
(* Follower with a zero ballot.  config(s) is n's view from its log: for   *)
(* the slots it commits, every slot <= s - Alpha is below s, committed or  *)
(* committed in the same step, so the view is the chosen one.  Only votes  *)
(* of members of config(s) count.                                          *)
(*                                                                         *)
(* commit-on-minority: the leader's own vote is enough.                    *)
(* stale-member-votes: a removed node's vote counts.                       *)
(***************************************************************************)
Committable(n, k) ==
    \A s \in Slots : commit[n] <= s /\ s < k =>
        LET J == ViewConfig(n, s)
        IN IsCommitQuorum(IF Mutant = "stale-member-votes" THEN AcceptedBy(n, s)
                          ELSE AcceptedBy(n, s) \cap J, J)

DeliverAccepted(n) ==
    /\ up[n]
    /\ role[n] = "Leader"
    /\ commit[n] < MaxSlot
    /\ Committable(n, commit[n] + 1)
    /\ LET k == SetMax({j \in commit[n] + 1 .. MaxSlot : Committable(n, j)})
           newly == {s \in Slots : commit[n] <= s /\ s < k}
           ops == {log[n][s].cmd : s \in newly} \ {Noop}
       IN /\ commit' = [commit EXCEPT ![n] = k]
          /\ SendAll({[type |-> "Commit", bal |-> ballot[n], up_to |-> k, src |-> n]}
                     \cup {[type |-> "Reply", op |-> o] : o \in ops})
    /\ UNCHANGED <<base, promised, log, copy, since, role, ballot, up, votes, crashes,
                   elections, reconfigs>>

(***************************************************************************)
(* Deliver(Commit) at a: advance commit over slots < up_to whose entry     *)
(* carries exactly the leader's ballot.  Why this is enough: the leader    *)
(* proposed one command per slot at its ballot, so an entry at that ballot *)
(* IS the leader's command, and the leader only says up_to after a quorum  *)
(* accepted it: it is chosen.  An entry at any other ballot may be a value *)
(* that lost, so a stops at the first one (it will be taught later).       *)
(* A learner learns by Teach only.                                         *)
(***************************************************************************)
CommitReach(a, m, k) ==
    \A s \in Slots : commit[a] <= s /\ s < k => log[a][s] # None /\ log[a][s].bal = m.bal

DeliverCommit(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Commit"
    /\ m.src # a
    /\ copy[a] = "member"
    /\ commit[a] < m.up_to
    /\ CommitReach(a, m, commit[a] + 1)
    /\ commit' = [commit EXCEPT ![a] =
                    SetMax({k \in commit[a] + 1 .. m.up_to : CommitReach(a, m, k)})]
    /\ UNCHANGED <<base, promised, log, copy, since, role, ballot, up, msgs, votes,
                   crashes, elections, reconfigs>>

(***************************************************************************)
(* Request(c): a client submits operation c.  It is sent once; a client's *)
(* retry (Timeout of kind retry) is a re-delivery of the same message,     *)
(* which the set gives for free.  Any node may receive it; only a leader   *)
(* acts on it (Redirect only helps the client find the leader faster, it   *)
(* changes no state that matters here, so it is left out).                *)
(***************************************************************************)
Request(c) ==
    /\ [type |-> "Request", op |-> c] \notin msgs
    /\ Send([type |-> "Request", op |-> c])
    /\ UNCHANGED <<base, promised, log, copy, since, role, ballot, commit, up, votes,
                   crashes, elections, reconfigs>>

(***************************************************************************)
(* Teach(n, y): leader n teaches node y its committed prefix -- snapshot   *)
(* install or log-segment shipping, abstracted to one atomic step that     *)
(* copies log[n][s] for s < commit[n] into y and sets y's commit index.    *)
(* It is not a vote: `votes` is unchanged, and y promises nothing.         *)
(*  - y holds no copy (a spare, or a node that deleted its copy): y gets   *)
(*    a fresh learner copy (never votes, never promises), if a change may  *)
(*    still be proposed to add it, or one already did;                     *)
(*  - y is a learner behind n: it catches up.  A learner whose taught      *)
(*    prefix holds a chosen change making it a member (and no later one    *)
(*    removing it) becomes a member copy with since = i + Alpha, i the     *)
(*    slot of that change;                                                 *)
(*  - y is a member copy whose commit index is below its since (a new      *)
(*    member does not vote below since, so it is taught those slots).      *)
(* Snapshots: the prefix taught includes n's snapshot.  y's new base is    *)
(* the higher of its own and n's (up to what it is taught): the positions  *)
(* below it are compacted (the chosen commands, no ballot), so FoldJury    *)
(* reads the same juries from them.                                        *)
(***************************************************************************)
AddedAt(f, k, y) ==
    {j \in 0 .. k - 1 : IsChange(f[j]) /\ y \in Joining(f[j]) /\ ValidIn(FoldJury(f, j), f[j])}

Teach(n, y) ==
    /\ MaxReconfigs > 0
    /\ up[n]
    /\ up[y]
    /\ y # n
    /\ role[n] = "Leader"
    /\ \/ copy[y] = "none" /\ (reconfigs < MaxReconfigs \/ y \in LatestJury(n))
       \/ copy[y] = "learner" /\ commit[y] < commit[n]
       \/ copy[y] = "member" /\ commit[y] < since[y] /\ commit[y] < commit[n]
    /\ LET k == IF copy[y] = "member" THEN Min(commit[n], since[y]) ELSE commit[n]
           own == IF copy[y] = "none" THEN 0 ELSE base[y]
           nb == Max(own, Min(base[n], k))
           newlog == [s \in Slots |->
                        IF s < own THEN log[y][s]
                        ELSE IF s < nb THEN [bal |-> ZeroBallot, cmd |-> log[n][s].cmd]
                        ELSE IF s < k THEN log[n][s]
                        ELSE IF copy[y] = "none" THEN None ELSE log[y][s]]
           f == [j \in Slots |-> newlog[j].cmd]
           joins == copy[y] # "member" /\ y \in FoldJury(f, k)
       IN /\ log' = [log EXCEPT ![y] = newlog]
          /\ base' = [base EXCEPT ![y] = nb]
          /\ commit' = [commit EXCEPT ![y] = k]
          /\ copy' = [copy EXCEPT ![y] = IF joins \/ copy[y] = "member" THEN "member"
                                         ELSE "learner"]
          /\ since' = IF joins THEN [since EXCEPT ![y] = SetMax(AddedAt(f, k, y)) + Delay]
                      ELSE since
    /\ UNCHANGED <<promised, role, ballot, up, msgs, votes, crashes, elections, reconfigs>>

(***************************************************************************)
(* Retire(x): a removed node deletes its copy of the cell once the removal *)
(* is in force (commit[x] >= e, the first slot of the new configuration)   *)
(* and a majority of the new configuration has committed past e (the       *)
(* successor quorum holds the prefix; reading their commit indexes is the  *)
(* abstraction of their acknowledgements).  Everything goes: its log, its  *)
(* promise, its since, its snapshot.  Its forwarding pointer (Redirect) is *)
(* not modelled.                                                           *)
(* If it is added back later it is taught a fresh copy (Teach).            *)
(***************************************************************************)
Retire(x) ==
    /\ MaxReconfigs > 0
    /\ up[x]
    /\ copy[x] = "member"
    /\ x \notin LatestJury(x)
    /\ LET f == LogCmd(x)
           removals == {j \in 0 .. commit[x] - 1 :
                          IsChange(f[j]) /\ x \in Leaving(f[j]) /\ ValidIn(FoldJury(f, j), f[j])}
           e == SetMax(removals) + Delay
       IN /\ removals # {}
          /\ commit[x] >= e
          /\ IsMajority({m \in Nodes : copy[m] = "member" /\ commit[m] > e}, ViewConfig(x, e))
    /\ copy' = [copy EXCEPT ![x] = "none"]
    /\ since' = [since EXCEPT ![x] = 0]
    /\ promised' = [promised EXCEPT ![x] = ZeroBallot]
    /\ log' = [log EXCEPT ![x] = [s \in Slots |-> None]]
    /\ base' = [base EXCEPT ![x] = 0]
    /\ commit' = [commit EXCEPT ![x] = 0]
    /\ role' = [role EXCEPT ![x] = "Follower"]
    /\ ballot' = [ballot EXCEPT ![x] = ZeroBallot]
    /\ UNCHANGED <<up, msgs, votes, crashes, elections, reconfigs>>

(***************************************************************************)
(* StepDown(n): a leader that is not a member of config(commit[n]) steps   *)
(* down ("it steps down once its commit index reaches the first slot where *)
(* it is not a member, and the new jury elects a leader").                 *)
(***************************************************************************)
StepDown(n) ==
    /\ up[n]
    /\ role[n] = "Leader"
    /\ n \notin ViewConfig(n, commit[n])
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ UNCHANGED <<base, promised, log, copy, since, ballot, commit, up, msgs, votes,
                   crashes, elections, reconfigs>>

(***************************************************************************)
(* Crash and Restart.  A crash loses everything volatile at once: while n  *)
(* is down its role, ballot and commit are gone, and Restart brings it     *)
(* back as a Follower with commit = base[n] (0 without snapshots; the      *)
(* snapshot is durable and a chosen prefix, so its slots stay known        *)
(* chosen), its promise and its log (and its copy, since and base).        *)
(* (Doing the reset at Crash rather than at Restart gives the same         *)
(* behaviours and fewer states: a node that is down has one volatile       *)
(* state, not many.)  Everything above that counted on a promise           *)
(* or a vote (DeliverPromises, DeliverAccepted) relies on these two        *)
(* surviving: the mutants promise-not-durable and accepted-not-durable     *)
(* forget them in the crash.  A node without a copy of the cell has no     *)
(* state in it to lose.                                                    *)
(***************************************************************************)
Crash(n) ==
    /\ up[n]
    /\ copy[n] # "none"
    /\ crashes < MaxCrashes
    /\ up' = [up EXCEPT ![n] = FALSE]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ ballot' = [ballot EXCEPT ![n] = ZeroBallot]
    /\ commit' = [commit EXCEPT ![n] = base[n]]
    /\ promised' = IF Mutant = "promise-not-durable"
                     THEN [promised EXCEPT ![n] = ZeroBallot]
                     ELSE promised
    /\ log' = IF Mutant = "accepted-not-durable"
                THEN [log EXCEPT ![n] = [s \in Slots |-> IF s < base[n] THEN log[n][s] ELSE None]]
                ELSE log
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<base, copy, since, msgs, votes, elections, reconfigs>>

Restart(n) ==
    /\ ~up[n]
    /\ up' = [up EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<base, promised, log, copy, since, role, ballot, commit, msgs, votes,
                   crashes, elections, reconfigs>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Log compaction and snapshot install (all disabled unless Snapshots).    *)
(*                                                                         *)
(* A compacted position.  For s < base[n], log[n][s] is                    *)
(* [bal |-> ZeroBallot, cmd |-> c]: the snapshot keeps the command c       *)
(* chosen at s, and no acceptor state (no ballot).  Nobody proposes with   *)
(* the zero ballot, so a compacted position is told from a vote by its     *)
(* ballot, and from an empty one (None) by its command.  Keeping the       *)
(* commands is the snapshot's content (in the implementation: the state    *)
(* machine's state, which includes the jury and the deduplication table);  *)
(* it is what lets every reader of a committed prefix stay unchanged:      *)
(* LogCmd and FoldJury (so ViewConfig, LatestJury, KnowsConfig,            *)
(* ConfigStart, Retire's removals), LogCmds (a compacted operation is not  *)
(* proposed again), Reconfigure's one-change check, CommittedPrefix.       *)
(* Every reader of acceptor state looks only at slots >= commit[n] >=      *)
(* base[n] (AcceptedBy, CommitReach, FreeSlot, Reps, DeliverPromises) or   *)
(* skips compacted slots (Reported).  votes, the ghost, is untouched by    *)
(* compaction and install: a vote once cast stays cast, whatever the node  *)
(* later forgets, so Agreement and Durability are stated as before.        *)
(***************************************************************************)

(***************************************************************************)
(* Compact(n, k): n folds its log prefix below k into its snapshot, for    *)
(* base[n] < k <= commit[n]: every slot below k is known chosen at n.      *)
(* Its positions below k lose their ballots (no acceptor state is kept)    *)
(* and keep the chosen commands; base[n] := k.  base is durable (Crash     *)
(* keeps it, Restart starts commit at it).  The snapshot goes out at once  *)
(* as a Snapshot message that anyone may install, now or much later (the   *)
(* implementation sends it on demand; a message in msgs need never be      *)
(* delivered, so sending it here only saves a step).                       *)
(***************************************************************************)
SnapshotOf(n, k) ==
    [type |-> "Snapshot", base |-> k, cmds |-> [s \in 0 .. k - 1 |-> log[n][s].cmd]]

Compact(n, k) ==
    /\ Snapshots
    /\ up[n]
    /\ copy[n] # "none"
    /\ base[n] < k /\ k <= commit[n]
    /\ log' = [log EXCEPT ![n] = [s \in Slots |-> IF s < k
                                                   THEN [bal |-> ZeroBallot, cmd |-> log[n][s].cmd]
                                                   ELSE log[n][s]]]
    /\ base' = [base EXCEPT ![n] = k]
    /\ Send(SnapshotOf(n, k))
    /\ UNCHANGED <<promised, copy, since, role, ballot, commit, up, votes, crashes,
                   elections, reconfigs>>

(***************************************************************************)
(* SendSnapshot(n): any node with a snapshot sends it (the leader to a     *)
(* peer whose commit index is below its base, a node refusing a Prepare    *)
(* from below its base to the candidate, in the implementation; here to    *)
(* anyone, which is more general).  Only a snapshot not sent yet: a node   *)
(* whose base came from Teach.                                             *)
(***************************************************************************)
SendSnapshot(n) ==
    /\ Snapshots
    /\ up[n]
    /\ copy[n] # "none"
    /\ base[n] > 0
    /\ SnapshotOf(n, base[n]) \notin msgs
    /\ Send(SnapshotOf(n, base[n]))
    /\ UNCHANGED <<promised, log, base, copy, since, role, ballot, commit, up, votes,
                   crashes, elections, reconfigs>>

(***************************************************************************)
(* Install(n, m): n installs the snapshot m (base k, the commands below    *)
(* k), only if k > commit[n]: installing never overwrites a longer chosen  *)
(* prefix.  commit[n] := k, base[n] := k, positions below k become the     *)
(* snapshot's (compacted), and positions >= k are KEPT: they are n's       *)
(* acceptor votes, and a vote n has cast at a chosen slot may be the one   *)
(* that a later phase-1 quorum's intersection relies on.  The snapshot is  *)
(* a chosen prefix (SnapshotIsChosenPrefix), so n's juries, from FoldJury  *)
(* over it, are the chosen ones.  A member installs (a learner learns by   *)
(* Teach only, as it does for Commit).                                     *)
(*                                                                         *)
(* A Candidate that installs moves its campaign up: it asks again, with    *)
(* the same ballot, from its new commit index k (a Prepare from k, which   *)
(* the nodes whose base is in (from, k] can answer), and its promises for  *)
(* the lower from still count.  That is safe: a Promise with from f        *)
(* reports every entry of its sender at slots >= f and binds it at every   *)
(* slot, so it covers every slot >= k as fully as one from k would; the    *)
(* slots in [f, k) it also reports are chosen and now in n's snapshot, and *)
(* DeliverPromises re-proposes only from commit[n] = k.  (Dropping them    *)
(* would be safe too, but would cost an extra round for nothing.)  A       *)
(* Leader that installs goes on from its new commit index likewise.        *)
(*                                                                         *)
(* stale-snapshot: n installs whatever k, and, like a naive Raft-style     *)
(* install, replaces its whole log with the snapshot: positions >= k are   *)
(* dropped too and commit[n] := k.                                         *)
(***************************************************************************)
Install(n, m) ==
    /\ Snapshots
    /\ up[n]
    /\ copy[n] = "member"
    /\ m \in msgs
    /\ m.type = "Snapshot"
    /\ m.base > commit[n] \/ Mutant = "stale-snapshot"
    /\ LET k == m.base
           reprepare == [type |-> "Prepare", bal |-> ballot[n], from |-> k, src |-> n]
       IN /\ log' = [log EXCEPT ![n] =
                       [s \in Slots |-> IF s < k THEN [bal |-> ZeroBallot, cmd |-> m.cmds[s]]
                                        ELSE IF Mutant = "stale-snapshot" THEN None
                                        ELSE log[n][s]]]
          /\ base' = [base EXCEPT ![n] = k]
          /\ commit' = [commit EXCEPT ![n] = k]
          /\ msgs' = IF role[n] = "Candidate" THEN msgs \cup {reprepare} ELSE msgs
    /\ UNCHANGED <<promised, copy, since, role, ballot, up, votes, crashes, elections,
                   reconfigs>>

-----------------------------------------------------------------------------
Next ==
    \/ \E n \in Nodes : Timeout(n) \/ DeliverAccepted(n) \/ Crash(n) \/ Restart(n)
    \/ \E n \in Nodes : role[n] = "Candidate" /\ \E Q \in PromiseSets(n) : DeliverPromises(n, Q)
    \/ \E n \in Nodes, m \in msgs :
          \/ DeliverPrepare(n, m)
          \/ DeliverNack(n, m)
          \/ DeliverRequest(n, m)
          \/ DeliverAccept(n, m)
          \/ DeliverCommit(n, m)
    \/ \E c \in Commands : Request(c)
    \* reconfiguration: all disabled when MaxReconfigs = 0 and Alpha = MaxSlot
    \/ \E n \in Nodes : ProposeLearned(n) \/ ExtendPhase1(n)
    \/ MaxReconfigs > 0 /\ \E n \in Nodes :
          \/ Retire(n) \/ StepDown(n)
          \/ \E c \in ProposableChanges : Reconfigure(n, c)
          \/ \E y \in Nodes : Teach(n, y)
    \* log compaction: all disabled unless Snapshots
    \/ Snapshots /\ \E n \in Nodes :
          \/ SendSnapshot(n)
          \/ \E k \in 1 .. MaxSlot : Compact(n, k)
          \/ \E m \in msgs : Install(n, m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Safety properties (docs/protocol.md, "Properties"), with per-slot juries *)

\* At most one command is chosen per slot.
Agreement == \A p, q \in Chosen : p[1] = q[1] => p[2] = q[2]

\* Any two nodes' committed logs agree slot by slot on the shorter prefix.
CommittedPrefix == \A n1, n2 \in Nodes, s \in Slots :
                       s < commit[n1] /\ s < commit[n2] => log[n1][s].cmd = log[n2][s].cmd

\* Every chosen command is Noop, a jury change (the control plane's request
\* is not modelled) or an operation some client requested.
Validity == {p[2] : p \in Chosen} \subseteq
                {Noop} \cup Changes \cup {m.op : m \in {m \in msgs : m.type = "Request"}}

\* Every operation acknowledged to a client is chosen in some slot.  (A Reply
\* in `msgs` has been sent; a client's receipt comes later, so this covers it.)
Durability == {m.op : m \in {m \in msgs : m.type = "Reply"}} \subseteq {p[2] : p \in Chosen}

\* A node's promised ballot never decreases, across restarts too -- for as
\* long as its copy of the cell lives (a deleted copy's promise goes with it;
\* a fresh copy starts at the zero ballot and never votes for its past).
PromiseMonotonic ==
    [][\A n \in Nodes : copy[n] # "none" /\ copy'[n] # "none" => BLeq(promised[n], promised'[n])]_vars

\* One change at a time: two chosen jury changes are at least Alpha slots
\* apart, so the change before is in force when the next one is chosen.
OneChangeAtATime ==
    \A p, q \in Chosen : IsChange(p[2]) /\ IsChange(q[2]) /\ p[1] < q[1] => q[1] - p[1] >= Alpha

\* Snapshots: every node's base is at most its commit index, its positions
\* below base are compacted (a command, no ballot) and no other position
\* carries the zero ballot, and every compacted position holds the command
\* chosen at its slot.
SnapshotIsChosenPrefix ==
    LET ch == Chosen IN
    \A n \in Nodes :
        /\ base[n] <= commit[n]
        /\ \A s \in Slots :
              IF s < base[n]
                THEN log[n][s] # None /\ log[n][s].bal = ZeroBallot /\ <<s, log[n][s].cmd>> \in ch
                ELSE log[n][s] = None \/ log[n][s].bal # ZeroBallot

\* A node's commit index never decreases while it is up (a crash takes it
\* back to base, never below), and its base never decreases while its copy
\* of the cell lives.
CommitNeverRegresses ==
    [][\A n \in Nodes : copy'[n] # "none" =>
          /\ base[n] <= base'[n]
          /\ up[n] /\ up'[n] => commit[n] <= commit'[n]]_vars

Safety == TypeOK /\ Agreement /\ CommittedPrefix /\ Validity /\ Durability /\ OneChangeAtATime
=============================================================================
