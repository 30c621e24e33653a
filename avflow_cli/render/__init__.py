"""Rendering face motion to video without a compiler: the release's codec-avatar face decoder
and a textured-mesh rasteriser in PyTorch, and the built-in demo avatar.

Modules, one job each:

- :mod:`.obj` reads a Wavefront OBJ mesh topology (the release's ``face_topo_small_neck.obj``);
- :mod:`.camera` holds the release's camera model, default head pose and view direction;
- :mod:`.decoder` is the codec-avatar face decoder (expression code + view → geometry and
  texture) and the strict converter of the release's ``dec_params.pt``;
- :mod:`.avatar` is the avatar folder carried inside model directories (decoder + topology +
  neutral-face statistics), written by ``avflow import release`` / ``prep import a2p``;
- :mod:`.raster` is the vectorised z-buffer rasteriser (barycentrics, UV texture sampling,
  analytic edge anti-aliasing);
- :mod:`.motion` reads saved motion files (``motion.npz``, the GEN layout);
- :mod:`.demo_avatar` is the built-in procedural 2-D avatar (named face parameters, their exact
  face-code decoder) and :mod:`.avatar_drawing` draws it;
- :mod:`.video` turns motion into a 30 fps mp4 with the speech, with either renderer;
- :mod:`.mp4` is the one frames → H.264 writer (ffmpeg) they all use.
"""
