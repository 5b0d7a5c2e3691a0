"""Control inputs for image models (ControlNet and friends), light parts only.

* :mod:`.preprocess`  control maps made with no model download: canny edges, scribble / line art from
  the user's own drawing (invert, threshold), depth / pose maps passed through, "none" (numpy, PIL, scipy)
* :mod:`.entries`     what one control input is (image, model, weight, start/end) and its checks
"""
