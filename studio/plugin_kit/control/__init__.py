"""Control inputs for image models (ControlNet and friends), light parts only.

* :mod:`.preprocess`  control maps made with no model download: canny edges, scribble / line art from
  the user's own drawing (invert, threshold), depth / pose maps passed through, "none" (numpy, PIL, scipy)
* :mod:`.providers`   the preprocessors installed plugins provide (``ProvidesControlPreprocessors``: depth
  estimation, pose ...) beside the built-in ones, one lookup for the image plugin and the Image panel
"""
