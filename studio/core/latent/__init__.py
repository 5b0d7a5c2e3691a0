"""Latent-space editing, the maths part (numpy only: no torch, no Qt).

* :mod:`.vectors`    slerp / lerp walks, cosines, InterFaceGAN conditional directions
* :mod:`.fitting`    directions from labelled examples (linear boundary, regression) and PCA (GANSpace)
* :mod:`.directions` the shareable directions file format (JSON / safetensors) and DirectionSet
* :mod:`.metrics`    PSNR, walk smoothness, edit selectivity and monotonicity
* :mod:`.media`      GIF / MP4 / PNG-frames export of walks
"""
