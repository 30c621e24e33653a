"""Data: demo corpus, session layout, resampling to FPS, HDF5 shards and the training dataset."""
