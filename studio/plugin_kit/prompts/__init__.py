"""Prompt syntax people type, as plain Python (stdlib only; no tokenizer, no torch).

* :mod:`.attention`  AUTOMATIC1111 emphasis: ``(word:1.3)``, ``(word)``, ``[word]``, ``\\(`` escapes and
  ``BREAK`` -> a list of (text, weight) fragments
* :mod:`.dynamic`    dynamic prompts: ``{red|green|blue}`` choices and ``__name__`` wildcards from text
  files, resolved reproducibly from an image's seed

The embedding side (tokenising fragments, chunking past the encoder's window, weighting the
hidden states) is :mod:`studio.plugin_kit.diffusion.prompt_embeds`, which imports torch.
"""
