"""Model configuration presets shipped as package data (read by training and synthesis)."""
