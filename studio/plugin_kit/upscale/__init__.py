"""Upscaling images: a plain Lanczos resize (always there) and super-resolution models.

* :mod:`.lanczos`  PIL's Lanczos resize (light)
* :mod:`.files`    which upscaler files a folder holds, and the pickle rule (light)
* :mod:`.models`   loads an upscaler file: through spandrel when it is importable (ESRGAN, Real-ESRGAN,
  SwinIR, DAT, HAT, ... auto-detected), else Studio's own RRDBNet for the ESRGAN family (imports torch)
* :mod:`.rrdb`     that RRDBNet (ESRGAN / Real-ESRGAN x4plus / x2plus layouts), written for Studio
* :mod:`.tiles`    tiled inference with overlapping, feathered seams so large images fit in memory
"""
