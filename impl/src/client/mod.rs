//! The client library (being built).
