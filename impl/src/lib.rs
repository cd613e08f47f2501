//! Production implementation (pure core, simulator, node). Not built yet: see issues 4 and 6.
