"""Latent directions as shareable files (numpy + the standard library; no torch).

Two equivalent encodings of a :class:`DirectionSet`:

JSON (``.json``) - schema ``studio-latent-directions`` version 1::

    {
      "format": "studio-latent-directions",
      "version": 1,
      "space": "vae-latent",          # vae-latent | text-embedding | noise | <plugin-defined>
      "model": "shapes-vae",          # what the vectors belong to (free text; informative)
      "latent_shape": [16],           # shape of one vector (a text-embedding one is [77, 768])
      "directions": [
        {
          "name": "x",                # unique, [A-Za-z0-9_.:+-]; what the CLI's --direction takes
          "label": "X position",      # optional, for the slider
          "kind": "named",            # named | boundary | regression | pca | prompt-pair | custom
          "vector": [0.1, ...],       # row-major floats, latent_shape of them
          "scale": 0.05,              # latent length per slider unit (default 1.0)
          "range": [-40, 40],         # slider range in slider units (default [-3, 3])
          "units": "px",              # optional, what one slider unit means
          "score": 0.97,              # optional: accuracy / R^2 / explained-variance ratio
          "notes": "..."              # optional, anything
        }
      ]
    }

safetensors (``.safetensors``): one tensor per direction, named by the direction, float32 of
``latent_shape``; the header's ``__metadata__`` has key ``studio-latent-directions`` holding the
same JSON as above without the ``vector`` fields.  A safetensors file without that key is read
too (every tensor becomes a ``custom`` direction of scale 1).

An edit moves a latent ``z`` to ``z + amount * scale * vector``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "studio-latent-directions"
VERSION = 1
KINDS = ("named", "boundary", "regression", "pca", "prompt-pair", "custom")
_NAME = re.compile(r"^[A-Za-z0-9_.:+\-]{1,80}$")


class DirectionFileError(ValueError):
    """A directions file is missing, unreadable or does not follow the schema (one sentence)."""


@dataclass
class Direction:
    name: str
    vector: np.ndarray
    kind: str = "custom"
    label: str = ""
    scale: float = 1.0
    range: tuple[float, float] = (-3.0, 3.0)
    units: str = ""
    score: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name or ""):
            raise DirectionFileError(f"direction name {self.name!r} must be 1-80 letters, digits or _.:+-")
        self.vector = np.asarray(self.vector, dtype=np.float32)
        if not np.all(np.isfinite(self.vector)):
            raise DirectionFileError(f"direction {self.name!r} has non-finite values")
        if not self.label:
            self.label = self.name.replace("_", " ")
        lo, hi = (float(v) for v in self.range)
        if not hi > lo:
            raise DirectionFileError(f"direction {self.name!r}: range must be [low, high] with low < high")
        self.range = (lo, hi)
        self.scale = float(self.scale)

    def header(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "kind": self.kind, "scale": self.scale,
                               "range": list(self.range)}
        if self.units:
            out["units"] = self.units
        if self.score is not None:
            out["score"] = float(self.score)
        if self.notes:
            out["notes"] = self.notes
        return out

    def offset(self, amount: float) -> np.ndarray:
        return float(amount) * self.scale * self.vector.astype(np.float64)


@dataclass
class DirectionSet:
    directions: list[Direction] = field(default_factory=list)
    space: str = "vae-latent"
    model: str = ""
    latent_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        seen = set()
        for d in self.directions:
            if d.name in seen:
                raise DirectionFileError(f"direction name {d.name!r} appears twice")
            seen.add(d.name)
        if not self.latent_shape and self.directions:
            self.latent_shape = tuple(self.directions[0].vector.shape)
        self.latent_shape = tuple(int(v) for v in self.latent_shape)
        for d in self.directions:
            if d.vector.size != int(np.prod(self.latent_shape)):
                raise DirectionFileError(f"direction {d.name!r} has {d.vector.size} values; the set's latent "
                                         f"shape {list(self.latent_shape)} needs {int(np.prod(self.latent_shape))}")
            d.vector = d.vector.reshape(self.latent_shape)

    def names(self) -> list[str]:
        return [d.name for d in self.directions]

    def get(self, name: str) -> Direction:
        for d in self.directions:
            if d.name == name:
                return d
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.directions)

    def __len__(self) -> int:
        return len(self.directions)

    def merged(self, other: DirectionSet, prefix: str = "") -> DirectionSet:
        """This set plus ``other``'s directions (renamed ``prefix + name`` on a clash)."""
        out = list(self.directions)
        names = set(self.names())
        for d in other.directions:
            name = d.name
            if name in names:
                name = f"{prefix or 'file:'}{d.name}"
                if name in names:
                    continue
            names.add(name)
            out.append(replace(d, name=name))
        return DirectionSet(out, self.space, self.model, self.latent_shape or other.latent_shape)

    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "space": self.space, "model": self.model,
                "latent_shape": list(self.latent_shape), "directions": [d.header() for d in self.directions]}


# ----------------------------------------------------------------------------- reading / writing


def to_json(dset: DirectionSet) -> str:
    doc = dset.header()
    for entry, d in zip(doc["directions"], dset.directions, strict=True):
        entry["vector"] = [round(float(v), 7) for v in d.vector.ravel()]
    return json.dumps(doc, indent=1)


def from_json(text: str, where: str = "the file") -> DirectionSet:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DirectionFileError(f"{where} is not valid JSON: {exc}") from None
    return _from_doc(doc, None, where)


def _from_doc(doc: Any, tensors: dict[str, np.ndarray] | None, where: str) -> DirectionSet:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DirectionFileError(f"{where} is not a Studio directions file (format must be {FORMAT!r})")
    if int(doc.get("version", 0)) > VERSION:
        raise DirectionFileError(f"{where} uses directions format version {doc.get('version')}; this Studio "
                                 f"reads version {VERSION}")
    entries = doc.get("directions")
    if not isinstance(entries, list):
        raise DirectionFileError(f"{where}: 'directions' must be a list")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "name" not in e:
            raise DirectionFileError(f"{where}: direction #{i + 1} has no name")
        if tensors is not None:
            if e["name"] not in tensors:
                raise DirectionFileError(f"{where}: no tensor for direction {e['name']!r}")
            vector = tensors[e["name"]]
        else:
            if "vector" not in e:
                raise DirectionFileError(f"{where}: direction {e['name']!r} has no vector")
            try:
                vector = np.asarray(e["vector"], dtype=np.float32)
            except (TypeError, ValueError):
                raise DirectionFileError(f"{where}: direction {e['name']!r} has a vector that is not numbers") \
                    from None
        kind = e.get("kind", "custom")
        out.append(Direction(name=str(e["name"]), vector=vector, kind=kind if kind in KINDS else "custom",
                             label=str(e.get("label", "")), scale=float(e.get("scale", 1.0)),
                             range=tuple(e.get("range", (-3.0, 3.0))), units=str(e.get("units", "")),
                             score=e.get("score"), notes=str(e.get("notes", ""))))
    shape = tuple(doc.get("latent_shape") or ())
    return DirectionSet(out, str(doc.get("space", "vae-latent")), str(doc.get("model", "")), shape)


def save(dset: DirectionSet, path: str | Path) -> Path:
    """Write ``.json`` or ``.safetensors`` (by the suffix), atomically."""
    from studio.plugin_kit.atomic import write_bytes_atomic, write_text_atomic

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_text_atomic(path, to_json(dset))
    elif suffix == ".safetensors":
        from safetensors.numpy import save as st_save

        tensors = {d.name: np.ascontiguousarray(d.vector.astype(np.float32)) for d in dset.directions}
        write_bytes_atomic(path, st_save(tensors, metadata={FORMAT: json.dumps(dset.header())}))
    else:
        raise DirectionFileError(f"directions are saved as .json or .safetensors (got {path.name})")
    return path


def load(path: str | Path) -> DirectionSet:
    path = Path(path)
    if not path.is_file():
        raise DirectionFileError(f"directions file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return from_json(path.read_text(encoding="utf-8"), path.name)
        except (OSError, UnicodeDecodeError) as exc:
            raise DirectionFileError(f"cannot read {path.name}: {exc}") from None
    if suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = handle.metadata() or {}
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        except Exception as exc:  # noqa: BLE001 - the library raises several types
            raise DirectionFileError(f"cannot read {path.name} as safetensors: {exc}") from None
        if FORMAT in meta:
            try:
                doc = json.loads(meta[FORMAT])
            except ValueError as exc:
                raise DirectionFileError(f"{path.name}: bad directions metadata: {exc}") from None
            return _from_doc(doc, tensors, path.name)
        dirs = [Direction(name=k, vector=v, kind="custom") for k, v in sorted(tensors.items())
                if _NAME.match(k) and v.ndim >= 1]
        shapes = {d.vector.shape for d in dirs}
        if len(shapes) > 1:  # mixed shapes: keep the most common one
            common = max(shapes, key=lambda s: sum(d.vector.shape == s for d in dirs))
            dirs = [d for d in dirs if d.vector.shape == common]
        return DirectionSet(dirs, "custom", path.stem)
    raise DirectionFileError(f"{path.name}: directions files are .json or .safetensors")


def load_many(paths: Iterable[str | Path], base: DirectionSet | None = None) -> DirectionSet:
    out = base or DirectionSet()
    for p in paths:
        extra = load(p)
        if out.latent_shape and extra.latent_shape and tuple(extra.latent_shape) != tuple(out.latent_shape):
            raise DirectionFileError(f"{Path(p).name} holds directions of shape {list(extra.latent_shape)}, "
                                     f"this model's latents are {list(out.latent_shape)}")
        out = out.merged(extra, prefix=f"{Path(p).stem}:")
    return out
