--------------------------- MODULE MCPhysaliaCell ---------------------------
(***************************************************************************)
(* Model-checking harness for the safety configurations (MCSafety*.cfg and *)
(* the mutants, MCMutant_*.cfg).  Commands are model values so that TLC    *)
(* can permute them (CmdSymmetry); Noop is a string and never permuted.    *)
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
=============================================================================
