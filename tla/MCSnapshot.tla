----------------------------- MODULE MCSnapshot -----------------------------
(***************************************************************************)
(* Directed searches for log compaction and snapshot install: DirectedSpec *)
(* of MCDirected.tla with Snapshots on, for behaviours too deep for a      *)
(* plain breadth-first search in a CI run (14 to 20 steps).  Every         *)
(* DirectedNext step is a Next step, so a violation found here is a        *)
(* behaviour of Spec.                                                      *)
(*                                                                         *)
(* Why a third command: the stale-snapshot behaviour loses the vote for a  *)
(* chosen slot above the snapshot, and that only shows when a later        *)
(* proposal puts a different command there.  With two commands, one is     *)
(* the snapshot's (slot 0) and the other the lost one (slot 1), and a      *)
(* leader never proposes an operation already in its log: the only fresh   *)
(* command it can propose at slot 1 is the lost one itself.                *)
(***************************************************************************)
EXTENDS MCDirected

CONSTANT c3
MCCommands3 == {c1, c2, c3}

\* The actors of the snapshot runs (tla/README.md, "Snapshots").
Node0 == {0}
Node1 == {1}
Node2 == {2}
Order02 == <<0, 2>>

\* mutant-stale-snapshot and snapshot-safety-directed: nodes 0 and 2 reach
\* node 1 (the only acceptor); c1 and c2 reach node 0, c3 reaches node 2;
\* node 0 compacts, node 2 installs.
LinksStale == {<<0, 1>>, <<2, 1>>}
RoutesStale == {<<0, c1>>, <<0, c2>>, <<2, c3>>}

\* mutant-promise-below-base: node 0 reaches node 1, node 2 reaches nodes 0
\* and 1; c1 reaches node 0, c2 node 2; node 0 compacts, nobody installs.
LinksBelowBase == {<<0, 1>>, <<2, 0>>, <<2, 1>>}
RoutesBelowBase == {<<0, c1>>, <<2, c2>>}
=============================================================================
