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
(*                                                                         *)
(* The ghost variable `votes` records every (slot, ballot, command, node)  *)
(* acceptance ever made, durable or not.  A command is *chosen* at a slot  *)
(* when a quorum voted for it at one ballot.  Safety is stated over        *)
(* `votes`, not over what nodes remember: a node that forgets a vote (the  *)
(* `accepted-not-durable` mutant) does not un-choose a command.            *)
(*                                                                         *)
(* The CONSTANT `Mutant` switches on one broken variant of the protocol;   *)
(* "none" is the correct protocol.  The names are those of the mutant      *)
(* table in docs/protocol.md; tla/README.md lists the invariant each one   *)
(* must violate.                                                           *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    N,           \* number of nodes in the cell (its jury); nodes are 0..N-1
    Commands,    \* opaque client operations Op(client, seq); consensus never looks inside
    MaxRound,    \* bound: no node stands with a round above MaxRound
    MaxSlot,     \* bound: slots are 0..MaxSlot-1
    MaxCrashes,  \* bound: at most this many Crash steps in a behaviour
    MaxElections,\* bound: at most this many election Timeouts in a behaviour
    Mutant       \* "none" or the name of one broken variant (docs/protocol.md)

Nodes == 0 .. N-1
Slots == 0 .. MaxSlot-1

Mutants == {"none", "accept-lower-ballot", "ignore-promised-values",
            "commit-on-minority", "promise-not-durable",
            "accepted-not-durable", "ballot-not-unique", "skip-prepare",
            "promise-omits-accepted", "reply-before-commit"}

ASSUME N \in Nat \ {0} /\ MaxRound \in Nat /\ MaxSlot \in Nat
ASSUME MaxCrashes \in Nat /\ MaxElections \in Nat /\ Mutant \in Mutants

Noop == "Noop"
ASSUME Noop \notin Commands

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

(***************************************************************************)
(* Quorums are majorities of the jury.  The jury never changes yet; when   *)
(* reconfiguration is built, IsQuorum takes the configuration in force at  *)
(* the slot.  Any two quorums intersect: every safety argument below rests *)
(* on that single fact.                                                    *)
(***************************************************************************)
IsQuorum(S) == 2 * Cardinality(S) > N

\* The quorum a leader waits for before it commits a slot: a majority, or,
\* in the `commit-on-minority` mutant, any non-empty set (itself alone).
IsCommitQuorum(S) ==
    IF Mutant = "commit-on-minority" THEN S # {} ELSE IsQuorum(S)

\* Minimal quorums: a candidate becomes Leader the moment it holds a quorum of
\* promises, so the set it acts on is never larger than needed.
MinQuorums == {Q \in SUBSET Nodes : IsQuorum(Q) /\ \A a \in Q : ~IsQuorum(Q \ {a})}

Cmds == Commands \cup {Noop}
Entry == [bal : Ballots, cmd : Cmds]
None == [bal |-> <<0, 0>>, cmd |-> "None"]   \* an empty log position
Roles == {"Follower", "Candidate", "Leader"}

\* An accepted entry as a Promise reports it.
Report == [slot : Slots, bal : Ballots, cmd : Cmds]

Message ==
         [type : {"Prepare"}, bal : Ballots, from : 0 .. MaxSlot, src : Nodes]
    \cup [type : {"Promise"}, bal : Ballots, accepted : SUBSET Report,
          src : Nodes, dst : Nodes]
    \cup [type : {"Nack"}, bal : Ballots, promised : Ballots,
          src : Nodes, dst : Nodes]
    \cup [type : {"Accept"}, bal : Ballots, slot : Slots, cmd : Cmds, src : Nodes]
    \cup [type : {"Accepted"}, bal : Ballots, slot : Slots, src : Nodes, dst : Nodes]
    \cup [type : {"Commit"}, bal : Ballots, up_to : 0 .. MaxSlot, src : Nodes]
    \cup [type : {"Request"}, op : Commands]
    \cup [type : {"Reply"}, op : Commands]

VARIABLES
    \* durable: they survive Crash/Restart
    promised,   \* promised[n]: the highest ballot n promised
    log,        \* log[n][s]: the entry n accepted last at slot s, or None
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
    elections   \* how many election Timeouts happened

vars == <<promised, log, role, ballot, commit, up, msgs, votes, crashes, elections>>

TypeOK ==
    /\ promised \in [Nodes -> Ballots]
    /\ log \in [Nodes -> [Slots -> Entry \cup {None}]]
    /\ role \in [Nodes -> Roles]
    /\ ballot \in [Nodes -> Ballots]
    /\ commit \in [Nodes -> 0 .. MaxSlot]
    /\ up \in [Nodes -> BOOLEAN]
    /\ msgs \subseteq Message
    /\ votes \subseteq Slots \X Ballots \X Cmds \X Nodes
    /\ crashes \in 0 .. MaxCrashes
    /\ elections \in 0 .. MaxElections

-----------------------------------------------------------------------------
(* Helpers *)

SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x

Send(m) == msgs' = msgs \cup {m}
SendAll(M) == msgs' = msgs \cup M

\* The entries of n's log at slots >= from, as a Promise carries them.
Reported(n, from) ==
    { [slot |-> s, bal |-> log[n][s].bal, cmd |-> log[n][s].cmd] :
        s \in {t \in Slots : t >= from /\ log[n][t] # None} }

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
(* Chosen: the ground truth that every invariant is stated against. *)

VotersAt(s, b, c) == {v[4] : v \in {v \in votes : v[1] = s /\ v[2] = b /\ v[3] = c}}

\* The set of <<slot, command>> pairs chosen so far.
Chosen == { <<v[1], v[3]>> : v \in {v \in votes : IsQuorum(VotersAt(v[1], v[2], v[3]))} }

ChosenAt(s, c) == <<s, c>> \in Chosen

-----------------------------------------------------------------------------
Init ==
    /\ promised = [n \in Nodes |-> ZeroBallot]
    /\ log = [n \in Nodes |-> [s \in Slots |-> None]]
    /\ role = [n \in Nodes |-> "Follower"]
    /\ ballot = [n \in Nodes |-> ZeroBallot]
    /\ commit = [n \in Nodes |-> 0]
    /\ up = [n \in Nodes |-> TRUE]
    /\ msgs = {}
    /\ votes = {}
    /\ crashes = 0
    /\ elections = 0

-----------------------------------------------------------------------------
(***************************************************************************)
(* Timeout(n), kind election: a node that does not lead starts an election *)
(* with a ballot above every round it knows.  It persists `promised` to    *)
(* its own ballot before sending Prepare, so it will never accept anything *)
(* from a lower ballot while a candidate: its own promise is one of the    *)
(* quorum it counts in DeliverPromises, and must be as binding as anyone   *)
(* else's.  `from` = commit[n]: slots below it are chosen and known to n,  *)
(* so it needs no report of them.                                          *)
(*                                                                         *)
(* skip-prepare: the node declares itself Leader at once.  It then never   *)
(* learns what a quorum accepted, and may overwrite a chosen slot.         *)
(***************************************************************************)
Timeout(n) ==
    LET r == SetMax({promised[n][1], ballot[n][1]}) + 1
        b == MkBallot(r, n)
    IN /\ up[n]
       /\ role[n] # "Leader"
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
       /\ UNCHANGED <<log, commit, up, votes, crashes>>

(***************************************************************************)
(* Deliver(Prepare) at acceptor a.  Promising `bal` is a pledge never to   *)
(* accept a lower ballot again; it is made durable (promised is durable)   *)
(* before the Promise leaves, which is what lets the candidate treat the   *)
(* Promise as binding across a crash of a.  The Promise reports a's        *)
(* accepted entries from the candidate's `from`: the candidate needs every *)
(* slot it has not seen committed, because any of them may hold a chosen   *)
(* command (promise-omits-accepted reports only from a's own commit).      *)
(***************************************************************************)
DeliverPrepare(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Prepare"
    /\ m.src # a
    /\ IF BLeq(promised[a], m.bal)
         THEN LET from == IF Mutant = "promise-omits-accepted"
                            THEN commit[a] ELSE m.from
              IN /\ promised' = [promised EXCEPT ![a] = m.bal]
                 /\ role' = IF role[a] # "Follower" /\ BLess(ballot[a], m.bal)
                              THEN [role EXCEPT ![a] = "Follower"]
                              ELSE role
                 /\ Send([type |-> "Promise", bal |-> m.bal,
                          accepted |-> Reported(a, from),
                          src |-> a, dst |-> m.src])
         ELSE /\ Send([type |-> "Nack", bal |-> m.bal, promised |-> promised[a],
                       src |-> a, dst |-> m.src])
              /\ UNCHANGED <<promised, role>>
    /\ UNCHANGED <<log, ballot, commit, up, votes, crashes, elections>>

(***************************************************************************)
(* Deliver(Promise) at candidate n, for a quorum Q of promises (n's own    *)
(* among them).  This is phase 2a's choice of values, and the heart of     *)
(* Agreement.  Suppose c was chosen at slot s >= commit[n] at a ballot b0  *)
(* below ballot[n].  A quorum voted for c at b0; it meets Q in some        *)
(* acceptor, which voted before it promised ballot[n] (after promising it  *)
(* refuses b0).  Its log entry at s has a ballot >= b0, and it reported it *)
(* because s >= commit[n] >= from.  By induction over the ballots between  *)
(* b0 and ballot[n], each of them proposed c at s, so the highest-ballot   *)
(* entry reported at s carries c, and re-proposing it keeps c the only     *)
(* choice.  A slot nobody in Q reports cannot hold a chosen command (the   *)
(* same quorum argument), so a Noop there is safe.  Slots below commit[n]  *)
(* are chosen and already in n's log; they need no proposal.               *)
(*                                                                         *)
(* ignore-promised-values: the leader proposes Noop everywhere instead.    *)
(***************************************************************************)
DeliverPromises(n, Q) ==
    /\ up[n]
    /\ role[n] = "Candidate"
    /\ n \in Q
    /\ IsQuorum(Q)
    /\ \A a \in Q \ {n} : \E m \in msgs : /\ m.type = "Promise" /\ m.src = a
                                          /\ m.dst = n /\ m.bal = ballot[n]
    /\ LET b == ballot[n]
           promises == {m \in msgs : /\ m.type = "Promise" /\ m.src \in Q
                                     /\ m.dst = n /\ m.bal = b}
           reports == Reported(n, commit[n])
                        \cup UNION {m.accepted : m \in promises}
           learned == {e.slot : e \in reports}
           hi == IF learned = {} THEN commit[n] - 1 ELSE SetMax(learned)
           todo == {s \in Slots : commit[n] <= s /\ s <= hi}
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
    /\ UNCHANGED <<promised, ballot, commit, up, crashes, elections>>

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
    /\ UNCHANGED <<promised, log, commit, up, msgs, votes, crashes, elections>>

(***************************************************************************)
(* Deliver(Request) at leader n: a client operation gets the first free    *)
(* slot.  A leader proposes at most one command per slot per ballot (it    *)
(* only fills a None position of its own log), which is what makes "the   *)
(* entry at ballot b" a single value for Commit and for the Promise        *)
(* argument above.  An operation already in the log is not proposed again *)
(* (a client retry is a duplicate Request, not a new operation).           *)
(*                                                                         *)
(* reply-before-commit: the leader acknowledges at once.                   *)
(***************************************************************************)
DeliverRequest(n, m) ==
    /\ up[n]
    /\ m \in msgs
    /\ m.type = "Request"
    /\ role[n] = "Leader"
    /\ m.op \notin LogCmds(n)
    /\ \E s \in Slots : s >= commit[n] /\ log[n][s] = None
    /\ LET free == CHOOSE t \in Slots : /\ t >= commit[n] /\ log[n][t] = None
                                        /\ \A u \in Slots : (u >= commit[n] /\ log[n][u] = None) => t <= u
           b == ballot[n]
           accept == [type |-> "Accept", bal |-> b, slot |-> free, cmd |-> m.op, src |-> n]
       IN /\ log' = [log EXCEPT ![n][free] = [bal |-> b, cmd |-> m.op]]
          /\ votes' = votes \cup {<<free, b, m.op, n>>}
          /\ IF Mutant = "reply-before-commit"
               THEN SendAll({accept, [type |-> "Reply", op |-> m.op]})
               ELSE Send(accept)
    /\ UNCHANGED <<promised, role, ballot, commit, up, crashes, elections>>

(***************************************************************************)
(* Deliver(Accept) at acceptor a.  Accepting at bal >= promised keeps the  *)
(* promise a gave every lower ballot's candidate (PromiseMonotonic): that  *)
(* candidate assumed a would never vote below it.  The entry and the      *)
(* promise are made durable before Accepted leaves; the leader's commit    *)
(* counts the Accepted as a vote that cannot be taken back.                *)
(*                                                                         *)
(* accept-lower-ballot: a accepts below its promise (without lowering it). *)
(***************************************************************************)
DeliverAccept(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Accept"
    /\ m.src # a
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
    /\ UNCHANGED <<ballot, commit, up, crashes, elections>>

(***************************************************************************)
(* Deliver(Accepted) at leader n: once a quorum accepted slot s at         *)
(* ballot[n], the command there is chosen (that is the definition), so n   *)
(* may advance commit over the longest such prefix, apply in slot order,   *)
(* Reply to the clients and send Commit{ballot, up_to}.  Durability holds  *)
(* because a Reply leaves only for a slot a quorum accepted.  An Accepted  *)
(* names no command: it counts for the leader's command only because one   *)
(* ballot proposes one command per slot (unique ballots, one proposal per  *)
(* slot in DeliverRequest/DeliverPromises) -- ballot-not-unique breaks     *)
(* exactly this.  The Accepted messages are counted straight from `msgs`,  *)
(* as Lamport's Paxos does: a leader that crashed never counts its old     *)
(* ballot's votes, because Crash makes it a Follower with a zero ballot.   *)
(*                                                                         *)
(* commit-on-minority: the leader's own vote is enough.                    *)
(***************************************************************************)
Committable(n, k) == \A s \in Slots : commit[n] <= s /\ s < k => IsCommitQuorum(AcceptedBy(n, s))

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
    /\ UNCHANGED <<promised, log, role, ballot, up, votes, crashes, elections>>

(***************************************************************************)
(* Deliver(Commit) at a: advance commit over slots < up_to whose entry     *)
(* carries exactly the leader's ballot.  Why this is enough: the leader    *)
(* proposed one command per slot at its ballot, so an entry at that ballot *)
(* IS the leader's command, and the leader only says up_to after a quorum  *)
(* accepted it: it is chosen.  An entry at any other ballot may be a value *)
(* that lost, so a stops at the first one (it will be taught later).       *)
(***************************************************************************)
CommitReach(a, m, k) ==
    \A s \in Slots : commit[a] <= s /\ s < k => log[a][s] # None /\ log[a][s].bal = m.bal

DeliverCommit(a, m) ==
    /\ up[a]
    /\ m \in msgs
    /\ m.type = "Commit"
    /\ m.src # a
    /\ commit[a] < m.up_to
    /\ CommitReach(a, m, commit[a] + 1)
    /\ commit' = [commit EXCEPT ![a] =
                    SetMax({k \in commit[a] + 1 .. m.up_to : CommitReach(a, m, k)})]
    /\ UNCHANGED <<promised, log, role, ballot, up, msgs, votes, crashes, elections>>

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
    /\ UNCHANGED <<promised, log, role, ballot, commit, up, votes, crashes, elections>>

(***************************************************************************)
(* Crash and Restart.  A crash loses everything volatile at once: while n  *)
(* is down its role, ballot and commit are gone, and Restart brings it     *)
(* back as a Follower with commit = 0, its promise and its log.  (Doing    *)
(* the reset at Crash rather than at Restart gives the same behaviours and *)
(* fewer states: a node that is down has one volatile state, not many.)    *)
(* Everything above that counted on a promise or a vote (DeliverPromises,  *)
(* DeliverAccepted) relies on these two surviving: the mutants             *)
(* promise-not-durable and accepted-not-durable forget them in the crash.  *)
(***************************************************************************)
Crash(n) ==
    /\ up[n]
    /\ crashes < MaxCrashes
    /\ up' = [up EXCEPT ![n] = FALSE]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ ballot' = [ballot EXCEPT ![n] = ZeroBallot]
    /\ commit' = [commit EXCEPT ![n] = 0]
    /\ promised' = IF Mutant = "promise-not-durable"
                     THEN [promised EXCEPT ![n] = ZeroBallot]
                     ELSE promised
    /\ log' = IF Mutant = "accepted-not-durable"
                THEN [log EXCEPT ![n] = [s \in Slots |-> None]]
                ELSE log
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<msgs, votes, elections>>

Restart(n) ==
    /\ ~up[n]
    /\ up' = [up EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<promised, log, role, ballot, commit, msgs, votes, crashes, elections>>

-----------------------------------------------------------------------------
Next ==
    \/ \E n \in Nodes : Timeout(n) \/ DeliverAccepted(n) \/ Crash(n) \/ Restart(n)
    \/ \E n \in Nodes, Q \in MinQuorums : DeliverPromises(n, Q)
    \/ \E n \in Nodes, m \in msgs :
          \/ DeliverPrepare(n, m)
          \/ DeliverNack(n, m)
          \/ DeliverRequest(n, m)
          \/ DeliverAccept(n, m)
          \/ DeliverCommit(n, m)
    \/ \E c \in Commands : Request(c)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Safety properties (docs/protocol.md, "Properties") *)

\* At most one command is chosen per slot.
Agreement == \A p, q \in Chosen : p[1] = q[1] => p[2] = q[2]

\* Any two nodes' committed logs agree slot by slot on the shorter prefix.
CommittedPrefix == \A n1, n2 \in Nodes, s \in Slots :
                       s < commit[n1] /\ s < commit[n2] => log[n1][s].cmd = log[n2][s].cmd

\* Every chosen command is Noop or an operation some client requested.
Validity == {p[2] : p \in Chosen} \subseteq {Noop} \cup {m.op : m \in {m \in msgs : m.type = "Request"}}

\* Every operation acknowledged to a client is chosen in some slot.  (A Reply
\* in `msgs` has been sent; a client's receipt comes later, so this covers it.)
Durability == {m.op : m \in {m \in msgs : m.type = "Reply"}} \subseteq {p[2] : p \in Chosen}

\* A node's promised ballot never decreases, across restarts too.
PromiseMonotonic == [][\A n \in Nodes : BLeq(promised[n], promised'[n])]_vars

Safety == TypeOK /\ Agreement /\ CommittedPrefix /\ Validity /\ Durability
=============================================================================
