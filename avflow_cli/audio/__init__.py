"""Audio: file I/O, resampling, the BigVGAN-compatible mel, VAD, ASR tokens and vocoders."""
