"""Latent-space editing, the maths part (numpy only: no torch, no Qt), shared by plugins and core.

* :mod:`.vectors`    slerp / lerp walks, cosines, InterFaceGAN conditional directions
* :mod:`.fitting`    directions from labelled examples (linear boundary, regression) and PCA (GANSpace)
* :mod:`.directions` the shareable directions file format (JSON / safetensors) and DirectionSet
* :mod:`.metrics`    PSNR, walk smoothness, edit selectivity and monotonicity

Exporting walks as GIF / MP4 / frames is the core's (:mod:`studio.core.latent.media`).
"""
