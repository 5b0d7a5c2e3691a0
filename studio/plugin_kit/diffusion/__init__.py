"""Loading diffusers pipelines, shared by every plugin that runs one (image, latent diffusion).

* :mod:`.sources`  which pipeline a source names (folder with model_index.json, single
  ``.safetensors`` checkpoint, hub id), with sentences for the user; no torch
* :mod:`.loading`  the pipeline itself (``from_pretrained`` / ``from_single_file``, dtype and
  device, offload, attention slicing, VAE tiling); imports torch and diffusers, so import it
  only from a plugin's ``load``

Importing this package imports neither.
"""
