"""Models: the windowed DiT, AV-Flow and its fusion variants, flow matching, head VAE, text-to-tokens."""
