"""Drive one run generator to its end, honouring the cancel token.

Closing the generator happens here, on the worker thread that iterates it, so the
plugin's ``finally:`` blocks (which free device memory) run where the model lives.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any

from studio.plugin_api import Cancelled, CancelToken, LoadedModel, Result


def drive(model: LoadedModel, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[object]:
    """Yield the model's events.  Raises :class:`Cancelled` when cancelled without keeping
    a partial result; an interrupt lets the plugin finish with its partial Result."""
    generator = model.run(request, cancel)
    try:
        for event in generator:
            yield event
            if isinstance(event, Result):
                return
            if cancel.is_set and not cancel.keep_partial:
                raise Cancelled()
        if cancel.is_set:  # the plugin honoured the cancel by returning early
            raise Cancelled()
        raise RuntimeError("the plugin stopped without a result")
    finally:
        if isinstance(generator, Generator):  # a plain iterator has nothing to close
            generator.close()
