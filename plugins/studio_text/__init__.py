"""Studio's first-party text plugin: streaming generation with transformers causal LMs.

Importing this module is cheap (standard library + studio.plugin_api); torch and
transformers are imported by :meth:`TextPlugin.load` only.

Two modes:

* ``chat``: ``messages`` (a list of ``{"role", "content"}``) plus a ``system`` prompt are
  rendered with the model's own chat template (or a plain "User:/Assistant:" template when it
  has none); ``continue_last`` continues the final assistant message instead of starting a
  new one.
* ``notebook``: ``prompt`` is a raw document that the model continues.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

from studio.plugin_api import API_VERSION, Kind, LoadOptions, ModelChoice, Param, ParamType
from studio.plugin_kit.assets import builtin_model_folder

from .sources import resolve

MODES = ("chat", "notebook")

PARAMETERS: tuple[Param, ...] = (
    Param("messages", ParamType.LIST, default=(), modes=("chat",),
          help='The conversation so far: a list of {"role": "user"|"assistant", "content": text}.'),
    Param("system", ParamType.TEXT, default="", modes=("chat",), label="System prompt",
          help="Instructions placed before the conversation."),
    Param("continue_last", ParamType.BOOL, default=False, modes=("chat",), advanced=True,
          label="Continue last reply", help="Continue the final assistant message instead of starting a new one."),
    Param("prompt", ParamType.TEXT, default="", modes=("notebook",), label="Document",
          help="The text the model continues."),
    Param("max_new_tokens", ParamType.INT, default=200, minimum=1, maximum=32768, label="Max new tokens",
          help="Upper bound on the length of the reply, in tokens."),
    Param("temperature", ParamType.FLOAT, default=0.8, minimum=0.0, maximum=5.0, step=0.05,
          help="Randomness; 0 always picks the most likely token."),
    Param("top_k", ParamType.INT, default=40, minimum=0, maximum=100000, label="Top-k",
          help="Sample only from the k most likely tokens (0 = off)."),
    Param("top_p", ParamType.FLOAT, default=0.95, minimum=0.0, maximum=1.0, step=0.01, label="Top-p",
          help="Sample from the smallest set of tokens whose probabilities add up to p (1 = off)."),
    Param("min_p", ParamType.FLOAT, default=0.05, minimum=0.0, maximum=1.0, step=0.01, label="Min-p",
          help="Drop tokens less likely than min-p times the most likely one (0 = off)."),
    Param("repetition_penalty", ParamType.FLOAT, default=1.1, minimum=0.5, maximum=3.0, step=0.05,
          help="Above 1 discourages repeating tokens already in the text (1 = off)."),
    Param("seed", ParamType.SEED, default=None, help="-1 or empty picks a random seed; the seed used is reported."),
    Param("ignore_eos", ParamType.BOOL, default=False, advanced=True, label="Ignore end of text",
          help="Keep writing past the model's end-of-text token, up to max new tokens (for benchmarks)."),
    Param("stop", ParamType.LIST, default=(), advanced=True, label="Stop strings",
          help="Generation ends when any of these strings is written (it is not kept)."),
)


def default_model_folder() -> Path:
    return builtin_model_folder("text-default")


class TextPlugin:
    id = "text"
    label = "Transformers text"
    kind = Kind.TEXT
    api_version = API_VERSION

    def parameters(self) -> Sequence[Param]:
        return PARAMETERS

    def modes(self) -> Sequence[str]:
        return MODES

    def models(self) -> Sequence[ModelChoice]:
        folder = default_model_folder()
        if (folder / "config.json").is_file():
            return [ModelChoice(str(folder), "Austen mini (built in)",
                                "A 4M-parameter model trained for Studio on Jane Austen's novels.")]
        return []

    def prewarm(self) -> None:
        """Import torch and transformers (no weights); the engine calls this on its worker thread
        before the first load, with the GC paused (see studio/plugin_kit/warmup.py)."""
        from studio.plugin_kit.warmup import preload_torch_libraries

        preload_torch_libraries()
        importlib.import_module(f"{__name__}.model")  # imports torch and transformers, loads nothing

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        resolved = resolve(source, options.allow_pickle)  # clear errors before heavy imports
        progress("Importing torch and transformers")
        from .model import TextModel

        return TextModel.load(source, resolved, options, progress)


__all__ = ["TextPlugin", "MODES", "PARAMETERS", "default_model_folder"]
