"""The Text panel's context meter, measured by the model itself on the engine's worker thread.

:class:`MeterText` is a copy of what to measure, made on the thread that owns the session;
:func:`measure` runs inside an :meth:`~studio.core.jobs.Engine.call` against the loaded model:
it renders the chat with the model's own template (``RendersChat``) and counts it the way the
model counts (``CountsTokens``).  A model without those abilities answers None and the panel
keeps its estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.plugin_api import CountsTokens, LoadedModel, RendersChat


@dataclass(frozen=True)
class MeterText:
    notebook: bool
    document: str  # notebook mode
    messages: tuple[tuple[str, str], ...]  # chat mode: (role, content), the system prompt first


def measure(text: MeterText, model: LoadedModel) -> tuple[int, int] | None:
    """(tokens used, context length); worker thread only."""
    if not isinstance(model, CountsTokens):
        return None
    if text.notebook:
        rendered = text.document
    elif not text.messages:
        rendered = ""
    elif isinstance(model, RendersChat):
        rendered = model.render_chat([{"role": r, "content": c} for r, c in text.messages], False)
    else:
        rendered = "\n".join(c for _, c in text.messages)
    return model.count_tokens(rendered), int(model.context_length)
