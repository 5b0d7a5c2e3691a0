"""The whole contract between Studio and a model plugin.

A plugin is a Python package that exposes, through an entry point in the group
``studio.plugins``, a zero-argument callable (usually the class) returning an object
that satisfies :class:`Plugin`.  That object declares:

* what it is (``id``, ``label``, ``kind``: image, text, music, latent or upscale),
* which parameters a run takes (:class:`Param` specs; the panel builds its form from them
  and the engine validates every request against them before it reaches the plugin),
* how a model is loaded (:meth:`Plugin.load`) into a :class:`LoadedModel`, which runs
  requests as a *generator of events* and can be unloaded.

This module is standard-library only, so importing a plugin's entry point never pulls in
torch: plugins import their heavy libraries inside ``load``.  A plugin imports only this module
and :mod:`studio.plugin_kit` (what plugins share) from Studio, never ``studio.core`` or
``studio.qt``, and not another plugin (checked by ``lint-imports``).  Images travel as PIL images,
audio as numpy arrays; both are typed ``Any`` here to keep this file import-free.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

#: Semantic version of this contract.  A plugin declares the version it was built against
#: (``api_version = "1.0"``; the integer ``1`` of older plugins means "1.0").  It loads when the
#: major numbers match and its minor is not newer than ours: the API only grows within a major.
# 1.2: ArtifactReady (save each image of a batch as it is done); 1.3: LoadOptions.quantize and
# .transformer, ReportsUnsupported, ReportsLoadMemory; 1.4: Kind.UPSCALE; 1.5: ProvidesControlPreprocessors.
API_VERSION = "1.5.0"


class Kind(str, Enum):
    IMAGE = "image"
    TEXT = "text"
    MUSIC = "music"
    LATENT = "latent"
    UPSCALE = "upscale"  # image in, larger image out (mode "upscale"; artifacts are Kind.IMAGE)


# --------------------------------------------------------------------------- parameters


class ParamError(ValueError):
    """A request value is invalid.  The message is a sentence meant for the user."""


class ParamType(str, Enum):
    INT = "int"
    FLOAT = "float"
    STR = "str"  # one line
    TEXT = "text"  # multi-line (prompts)
    BOOL = "bool"
    CHOICE = "choice"
    SEED = "seed"  # int; None or -1 means "pick one at random"
    SIZE = "size"  # (width, height); must be positive multiples of ``multiple_of``
    IMAGE_PATH = "image"  # path to an image file the user picked
    FILE_PATH = "file"  # path to any file (audio clip, MIDI, LoRA ...)
    LIST = "list"  # a list of values passed through as-is (e.g. LoRA entries)


@dataclass(frozen=True)
class Param:
    """One typed input of a run.  Frozen so a plugin can share its specs safely."""

    name: str
    type: ParamType
    default: Any = None
    label: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    multiple_of: int = 1  # SIZE only
    optional: bool = False  # None is accepted (paths, optional images)
    advanced: bool = False  # the form may fold it away
    modes: tuple[str, ...] = ()  # only shown/validated in these modes; empty = all

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ParamError."""
        if value is None or (isinstance(value, str) and value.strip() == "" and self.type
                             not in (ParamType.STR, ParamType.TEXT)):
            if self.type is ParamType.SEED:
                return None
            if self.optional:
                return None
            if self.default is not None:
                return self.default
            raise ParamError(f"{self.label} is required.")
        t = self.type
        if t is ParamType.SEED:
            seed = _as_int(value, self.label)
            if seed == -1:
                return None
            if not 0 <= seed < 2**32:
                raise ParamError(f"{self.label} must be between 0 and {2**32 - 1}, or -1 for random.")
            return seed
        if t is ParamType.INT:
            return self._in_range(_as_int(value, self.label))
        if t is ParamType.FLOAT:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ParamError(f"{self.label} must be a number, not {value!r}.") from None
            if not math.isfinite(number):
                raise ParamError(f"{self.label} must be a finite number, not {value!r}.")
            return self._in_range(number)
        if t in (ParamType.STR, ParamType.TEXT):
            if not isinstance(value, str):
                raise ParamError(f"{self.label} must be text.")
            return value
        if t is ParamType.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ParamError(f"{self.label} must be true or false.")
        if t is ParamType.CHOICE:
            if value not in self.choices:
                raise ParamError(f"{self.label} must be one of: {', '.join(self.choices)} (got {value!r}).")
            return value
        if t is ParamType.SIZE:
            return self._size(value)
        if t in (ParamType.IMAGE_PATH, ParamType.FILE_PATH):
            return str(value)
        if t is ParamType.LIST:
            return list(value)
        raise ParamError(f"Unknown parameter type {t!r}.")  # pragma: no cover - enum exhausted

    def _in_range(self, number: float) -> Any:
        if self.minimum is not None and number < self.minimum:
            raise ParamError(f"{self.label} must be at least {_fmt(self.minimum)} (got {_fmt(number)}).")
        if self.maximum is not None and number > self.maximum:
            raise ParamError(f"{self.label} must be at most {_fmt(self.maximum)} (got {_fmt(number)}).")
        return number

    def _size(self, value: Any) -> tuple[int, int]:
        if isinstance(value, str):
            parts = value.lower().replace("×", "x").split("x")
            if len(parts) != 2:
                raise ParamError(f"{self.label} must look like WIDTHxHEIGHT, e.g. 512x512 (got {value!r}).")
            value = parts
        try:
            width, height = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ParamError(f"{self.label} must be two whole numbers, e.g. 512x512 (got {value!r}).") from None
        if width <= 0 or height <= 0:
            raise ParamError(f"{self.label} must be positive (got {width}x{height}).")
        m = self.multiple_of
        if width % m or height % m:
            raise ParamError(f"{self.label} must be a multiple of {m} on both sides (got {width}x{height}).")
        if self.maximum is not None and max(width, height) > self.maximum:
            raise ParamError(f"{self.label} must be at most {_fmt(self.maximum)} on each side.")
        return width, height


def _as_int(value: Any, label: str) -> int:
    if isinstance(value, bool):
        raise ParamError(f"{label} must be a whole number.")
    if isinstance(value, float):
        if not value.is_integer():
            raise ParamError(f"{label} must be a whole number (got {value}).")
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ParamError(f"{label} must be a whole number (got {value!r}).") from None


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def validate_request(params: Sequence[Param], raw: Mapping[str, Any], mode: str | None = None) -> dict[str, Any]:
    """Validate a whole request against ``params``; unknown keys are an error (typos show)."""
    by_name = {p.name: p for p in params}
    unknown = sorted(set(raw) - set(by_name) - {"mode"})
    if unknown:
        raise ParamError(f"Unknown parameter(s): {', '.join(unknown)}.")
    clean: dict[str, Any] = {}
    if mode is not None:
        clean["mode"] = mode
    for p in params:
        if p.modes and mode not in p.modes:
            continue
        clean[p.name] = p.validate(raw.get(p.name, p.default))
    return clean


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Progress:
    """``step`` of ``total`` done.  ``total`` 0 means unknown."""

    step: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class Preview:
    """A cheap look at work in progress: a PIL image (image/latent kinds) or an audio chunk."""

    step: int
    image: Any = None  # PIL.Image.Image
    audio: Any = None  # numpy float32 array, shape (frames, channels)
    sample_rate: int = 0


@dataclass(frozen=True)
class Partial:
    """Streamed text: ``text`` is only the newly generated piece, to be appended."""

    text: str
    tokens: int = 1


@dataclass(frozen=True)
class Log:
    message: str
    level: str = "info"  # info | warning


@dataclass
class Artifact:
    """One finished output.  ``parameters`` are what produced it (saved as metadata)."""

    kind: Kind
    image: Any = None  # PIL.Image.Image
    text: str | None = None
    audio: Any = None  # numpy float32 array (frames, channels)
    sample_rate: int = 0
    midi: bytes | None = None
    seed: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The last event of a successful run.  ``interrupted`` marks a partial result."""

    artifacts: tuple[Artifact, ...]
    interrupted: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactReady:
    """One finished output of a run that makes several (image *i* of a batch), sent as soon
    as it is done: the engine saves it at once, so a crash or a kill later still keeps it.
    The final :class:`Result` lists it as well; it is not saved twice (matched by identity).
    Since API 1.2; older engines ignore it and save everything from the Result."""

    artifact: Artifact


Event = Progress | Preview | Partial | Log | ArtifactReady | Result


# --------------------------------------------------------------------------- cancel


class Cancelled(Exception):
    """Raised inside a plugin (by ``CancelToken.raise_if_set``) to stop early without a result."""


class CancelToken:
    """Cooperative cancel flag, checked by plugins between steps.

    ``interrupt`` asks the plugin to stop *and keep* what it has (a partial result);
    ``cancel`` asks it to stop and drop everything.  Both set :attr:`is_set`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.keep_partial = False

    def cancel(self) -> None:
        self.keep_partial = False
        self._event.set()

    def interrupt(self) -> None:
        self.keep_partial = True
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def raise_if_set(self) -> None:
        if self._event.is_set():
            raise Cancelled()


# --------------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class ModelChoice:
    """A model the plugin offers in the picker without the user typing a path."""

    source: str  # folder, file or hub id, as passed to ``Plugin.load``
    label: str
    description: str = ""
    # Parameter values that suit this model, known without loading it (e.g. its native size);
    # the form takes them for fields the user has not changed.
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    """How the user wants a model loaded.  Plugins ignore what does not apply to them."""

    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    allow_download: bool = False  # hub ids are fetched only when the user asked for it
    allow_pickle: bool = False  # refuse .ckpt/.bin pickles unless the user opts in
    trust_remote_code: bool = False
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False  # CUDA only
    # Weight-only quantization of the denoiser and text encoders at load: none | int8 | fp8.
    quantize: str = "none"
    # A separate denoiser (transformer / UNet) weights file to use with the model's other
    # components: a GGUF file (Q8_0, Q4_K ...) or a single-file .safetensors; "" = the model's own.
    transformer: str = ""


@runtime_checkable
class LoadedModel(Protocol):
    """A loaded model.  It may also carry two optional attributes the panels read:
    ``defaults`` (a mapping of parameter name -> value that suits this model, e.g. its native
    size) and ``choices`` (parameter name -> the values valid for this model, e.g. the
    schedulers compatible with a pipeline)."""

    source: str
    device: str  # what it actually runs on, e.g. "cpu" or "cuda:0"
    memory_bytes: int  # weights' footprint, for the residency manager

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        """Yield events; the last one is a Result.  ``request`` is already validated."""
        ...

    def unload(self) -> None: ...


@runtime_checkable
class Plugin(Protocol):
    """A plugin.  Optional abilities are the capability protocols below (checked with
    ``isinstance``), never undocumented attributes."""

    id: str  # stable, lowercase; used in history and the CLI
    label: str
    kind: Kind
    api_version: str | int  # the API version the plugin was built for, e.g. "1.1"

    def parameters(self) -> Sequence[Param]: ...

    def modes(self) -> Sequence[str]:
        """Run modes the form offers (e.g. txt2img, img2img, inpaint); may be empty."""
        ...

    def models(self) -> Sequence[ModelChoice]:
        """Models offered in the picker (the embedded defaults first)."""
        ...

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]) -> LoadedModel:
        """Load ``source``; call ``progress`` with short human messages while it takes time.

        Raise an exception with a clear sentence when the source is missing, unreadable or
        of the wrong kind; the studio shows it and keeps running.
        """
        ...


# --------------------------------------------------------------------------- capabilities
#
# Optional abilities a plugin (or a model it loaded) may have.  The studio checks them with
# ``isinstance(obj, Capability)`` and never looks for undocumented attributes.  Each says on
# which object it lives: the plugin (known before any model is loaded) or the loaded model.


@runtime_checkable
class Prewarms(Protocol):
    """Plugin: import the heavy libraries the first ``load`` needs, without loading weights.

    The engine calls it once, on its worker thread, when it is idle after the window is shown
    (or just before the first load), with the garbage collector paused; a failure is logged
    and ignored (the load then imports as usual)."""

    def prewarm(self) -> None: ...


@runtime_checkable
class UnderstandsPrompts(Protocol):
    """Plugin: read parameter values out of a prompt ("a slow chorale in D minor, organ" ->
    key, scale, tempo, instrument), so the form can show what the prompt will do."""

    def understand_prompt(self, prompt: str) -> Mapping[str, Any]:
        """Parameter name -> value for what the prompt says; empty when it says nothing."""
        ...

    def describe_understood(self, values: Mapping[str, Any]) -> str:
        """A short human summary of ``values`` (e.g. "key D minor, 60 bpm, organ")."""
        ...


@runtime_checkable
class MapsA1111(Protocol):
    """Plugin: map AUTOMATIC1111 ``parameters`` fields onto this plugin's parameters."""

    def from_a1111(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(parameter values, the field names that have no place here)."""
        ...


@runtime_checkable
class ContinuesMidi(Protocol):
    """Plugin: a symbolic music model; its results carry ``Artifact.midi`` and it can continue
    a MIDI clip given in the parameter named ``midi_parameter``."""

    midi_parameter: str


@runtime_checkable
class ModelHints(Protocol):
    """Loaded model: what suits this model, known once it is loaded.

    ``defaults``: parameter name -> value (e.g. its native size); ``choices``: parameter name ->
    the values valid for this model (e.g. the samplers compatible with a pipeline); ``modes``:
    the run modes this model supports (a subset of the plugin's ``modes()``)."""

    defaults: Mapping[str, Any]
    choices: Mapping[str, Sequence[Any]]
    modes: Sequence[str]


@runtime_checkable
class ReportsUnsupported(Protocol):
    """Loaded model: the parameters that have no effect with this model, each with the reason
    (e.g. ``{"negative_prompt": "Flux.2 takes no negative prompt"}``).  The form hides them; a
    run that gets a value for one anyway says it was ignored (``Log`` warning)."""

    unsupported: Mapping[str, str]


@runtime_checkable
class ReportsLoadMemory(Protocol):
    """Loaded model: what loading it cost, as plain numbers for the status bar and the history:
    ``peak_rss_bytes`` (process peak during the load), ``rss_delta_bytes``, ``peak_vram_bytes``
    (CUDA), ``weights_bytes``, ``quantized_saved_bytes``, ``seconds`` (any may be absent)."""

    load_memory: Mapping[str, Any]


@runtime_checkable
class CountsTokens(Protocol):
    """Loaded model: count tokens the way the model does (the context meter)."""

    context_length: int

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class RendersChat(Protocol):
    """Loaded model: turn a conversation into the prompt text the model sees (its chat template)."""

    def render_chat(self, messages: Sequence[Mapping[str, str]], continue_last: bool) -> str: ...


#: what a control map shows; a union ControlNet picks its control mode from it (see ControlPreprocessor)
CONTROL_MAP_TYPES = ("depth", "pose", "edges", "lines", "scribble", "normal", "segment", "other")


@dataclass(frozen=True)
class ControlPreprocessor:
    """One control preprocessor a plugin provides: ``name`` is the KIND users choose (``--control
    NAME:IMAGE``, the Image panel's list); ``run(image, (width, height))`` takes the user's image (a PIL
    RGB image) and returns the control map as a PIL RGB image of that size.  It runs on the job's worker
    thread (load the model inside it, on first use); raise ValueError with one sentence for bad input.
    ``map_type`` (one of :data:`CONTROL_MAP_TYPES`) says what the map shows."""

    name: str
    description: str
    run: Callable[[Any, tuple[int, int]], Any]
    map_type: str = "other"


@runtime_checkable
class ProvidesControlPreprocessors(Protocol):
    """Plugin: control preprocessors that need a model (depth estimation, pose detection ...).

    The studio asks once, when the plugin is registered; the names join the built-in ones (canny,
    scribble, lineart, depth, pose, none) wherever control inputs are chosen.  A name that is already
    taken (built-in, or by a plugin registered earlier) is skipped and ``studio plugins`` says so."""

    def control_preprocessors(self) -> Sequence[ControlPreprocessor]: ...


def api_compatible(declared: object) -> str | None:
    """None when a plugin built for API ``declared`` loads here, else the reason in one sentence."""
    text = str(declared).strip() if isinstance(declared, (str, int)) and not isinstance(declared, bool) else ""
    parts = text.split(".")
    if not text or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return f"it declares plugin API {declared!r}, which is not a version like \"1.0\""
    major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    ours_major, ours_minor = (int(p) for p in API_VERSION.split(".")[:2])
    if major != ours_major:
        return f"it was built for plugin API {major}.x; this studio speaks {API_VERSION}"
    if minor > ours_minor:
        return f"it needs plugin API {major}.{minor}, newer than this studio's {API_VERSION}; update the studio"
    return None
