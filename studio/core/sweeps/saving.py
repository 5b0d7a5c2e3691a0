"""Saving an item that was made elsewhere (a Ray worker) exactly as the engine saves a job.

The local backend lets :class:`studio.core.jobs.Engine` save (it does so before announcing a
result).  Results that come back from a cluster are saved here, by the driver, with the same
steps in the same order: a ``jobs`` row, ``model_source`` in the parameters, the output store
(same naming, same A1111 / WAV metadata), an ``outputs`` row, the job marked done.  A test
compares a Ray-saved item with an engine-saved one field by field.

Text results also get a JSON twin (``NNNNN-SEED-slug.json``) with the parameters, for both
backends: the store writes the text alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from studio.core.atomic import publish_new
from studio.core.history import History
from studio.core.store import OutputStore
from studio.plugin_api import Artifact, Kind


def save_remote_result(store: OutputStore, history: History, plugin_id: str, kind: Kind, model: str,
                       mode: str | None, request: dict[str, Any], artifacts: Sequence[Artifact]) -> list[Path]:
    """Save one item's artifacts as the engine would have; returns the paths written."""
    job_id = uuid.uuid4().hex[:12]
    history.add_job(job_id, plugin_id, kind.value, model, {"mode": mode, "request": request, "action": "run"})
    history.set_state(job_id, "running", "")
    paths: list[Path] = []
    for artifact in artifacts:
        artifact.parameters.setdefault("model_source", model)
        path = store.save(artifact)
        history.add_output(job_id, artifact.kind.value, path, artifact.seed, artifact.parameters)
        paths.append(path)
        paths.extend(write_text_twin(artifact, path))
    history.set_state(job_id, "done", "")
    return paths


def write_text_twin(artifact: Artifact, path: Path) -> Iterable[Path]:
    """For a text artifact saved at ``path``: its parameters as JSON beside it."""
    if artifact.kind is not Kind.TEXT or path.suffix != ".txt":
        return []
    twin = path.with_suffix(".json")
    document = {"text": artifact.text, "seed": artifact.seed, "parameters": artifact.parameters}
    # Its number is the text file's, just claimed under the store's lock; never replace a file.
    publish_new(twin, json.dumps(document, indent=2, ensure_ascii=False, default=str).encode("utf-8"))
    return [twin]
