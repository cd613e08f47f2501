//! Trace refinement against the model. Not built yet: see issue 5.
