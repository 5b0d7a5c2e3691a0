"""Prompt building blocks that need no torch: the fallback chat template, context trimming,
stop strings held back while streaming, and incremental detokenisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Used for models whose tokenizer has no chat template of its own.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
#: With the fallback template a reply ends where the next turn would begin.
FALLBACK_STOPS = ("\nUser:", "\nAssistant:")


def clean_messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    """Validate the ``messages`` list; raise ValueError with a sentence on bad entries."""
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "content" not in message or "role" not in message:
            raise ValueError(f"Message {i + 1} must have a role and content.")
        role = str(message["role"])
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"Message {i + 1} has an unknown role {role!r} (use user, assistant or system).")
        out.append({"role": role, "content": str(message["content"])})
    return out


@dataclass
class Trimmed:
    messages: list[dict[str, str]]
    dropped: int  # whole turns removed from the start


def trim_turns(messages: list[dict[str, str]], count: Callable[[list[dict[str, str]]], int],
               budget: int) -> Trimmed:
    """Drop the oldest non-system messages until ``count(messages) <= budget``.

    The system message and the newest message are always kept; a user message is dropped
    together with the assistant reply that follows it, so turns stay paired.
    """
    kept = list(messages)
    dropped = 0
    while count(kept) > budget:
        first = next((i for i, m in enumerate(kept) if m["role"] != "system"), None)
        if first is None or first >= len(kept) - 1:
            break
        n = 2 if (kept[first]["role"] == "user" and first + 1 < len(kept) - 1
                  and kept[first + 1]["role"] == "assistant") else 1
        del kept[first:first + n]
        dropped += n
    return Trimmed(kept, dropped)


class StopHoldback:
    """Streams text but holds back any tail that could be the start of a stop string."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.hit: str | None = None

    def feed(self, text: str) -> str:
        """Add newly decoded ``text``; return what is safe to show now."""
        if self.hit is not None:
            return ""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out
        cut = None
        for stop in self.stops:
            at = self.pending.find(stop)
            if at != -1 and (cut is None or at < cut):
                cut, self.hit = at, stop
        if cut is not None:
            out, self.pending = self.pending[:cut], ""
            return out
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        out = self.pending[:len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep:]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.hit is not None else self.pending), ""
        return out


class IncrementalDecoder:
    """Turns a growing list of token ids into appended text pieces.

    Decodes a short window (from ``prefix`` to the end) and emits only what is new, so the
    cost per token stays constant and multi-token characters (UTF-8 split across byte tokens)
    are emitted only once complete.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        # Fast tokenizers: call the Rust decoder directly (an order of magnitude less overhead).
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        self.ids: list[int] = []
        self.prefix = 0  # start of the decode window
        self.read = 0  # ids up to here have been emitted

    def _decode(self, ids: list[int]) -> str:
        if self.backend is not None:
            return self.backend.decode(ids, skip_special_tokens=True)
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, new_ids: Sequence[int]) -> str:
        self.ids.extend(int(i) for i in new_ids)
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            piece = after[len(before):] if after.startswith(before) else after[len(before):]
            self.prefix, self.read = self.read, len(self.ids)
            return piece
        return ""

    def finish(self) -> str:
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):] if len(after) > len(before) else ""
