"""Training loops: shared run-directory, checkpoint, EMA and DDP plumbing, one loop per model."""
