//! Trace format (schema, writer, reader, merger). Not built yet: see issue 4.
