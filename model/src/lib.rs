//! Executable specification of a Physalia cell. Under construction.
