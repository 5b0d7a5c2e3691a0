"""The plugin kit: what first-party and third-party plugins share, public and stable.

A plugin imports only :mod:`studio.plugin_api` (the contract) and this kit — never
``studio.core``, ``studio.qt`` or another plugin.  The kit follows the API's version
(:data:`studio.plugin_api.API_VERSION`): names documented here only grow within a major version.

Importing the kit, or any module listed as light, costs the standard library and numpy at
most; modules that need torch import it inside their functions or say so at their top, so a
plugin's module level stays light and the window opens without torch.

Light (stdlib / numpy / PIL when called):

* :mod:`.sources`    the one rule for what a model source names: folder, single file, hub id
* :mod:`.streaming`  :class:`~.streaming.ThreadStream`: a blocking call with callbacks on a helper
  thread, received as a generator of events (diffusers steps, transformers streamers)
* :mod:`.seeds`      random 32-bit seeds, batch seeds, a CPU ``torch.Generator`` (torch on call)
* :mod:`.images`     open an image the user named, or raise ``ParamError`` with a sentence
* :mod:`.image_limits`  the largest image a user may hand in (decompression-bomb guard, Settings)
* :mod:`.assets`     :func:`~.assets.builtin_model_folder`: where the built-in models live
* :mod:`.warmup`     importing torch without freezing the window (``prewarm`` helpers)
* :mod:`.atomic`     atomic file writes (temp file, fsync, rename); ``publish_new`` never replaces a
  file; stale temp files of crashed writers removed
* :mod:`.midi`       Standard MIDI files read / written with ``mido``: notes, tempo, key, GM programs
* :mod:`.latent`     numpy latent-direction maths and the directions file format
* :mod:`.shapes`     the Shapes world and its ShapeEval scorer (see there for why it is a door)
* :mod:`.testing`    ``check_plugin(plugin)``: the plugin-author test kit (contract, capabilities, one run)
* :mod:`.diffusion`  diffusers pipeline sources (light) and loader (``.loading``: torch)

Heavy (import only from ``Plugin.load`` / a loaded model):

* :mod:`.devices`    the device / dtype policy ("auto" = CUDA, then MPS, then CPU); imports torch
* :mod:`.diffusion.loading`  loads a diffusers pipeline; imports torch and diffusers
"""
