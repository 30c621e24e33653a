"""Vision: analysis of faces and video — SMIRK features, face detection, head-pose maths, video input.

Nothing here draws: the demo avatar and every other renderer live in :mod:`avflow_cli.render`.
"""
