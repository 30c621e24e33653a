"""Vision: SMIRK features, head pose maths, face detection and the demo avatar renderer."""
