"""What the Text panel keeps: conversations (chat messages or a notebook document, with each
generation's statistics), their JSON files, and sampling presets.

Plain data and files, no engine: :mod:`studio.core.sessions.text` drives generation on top of it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.core.atomic import write_text_atomic
from studio.core.settings import studio_home
from studio.plugin_api import ParamError

CHAT, NOTEBOOK = "chat", "notebook"
SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens")

BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "Deterministic": {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0},
    "Balanced": {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.1},
    "Creative": {"temperature": 1.0, "top_k": 0, "top_p": 0.98, "min_p": 0.02, "repetition_penalty": 1.05},
}

DEFAULT_SYSTEM = "You are a helpful assistant."


def conversations_dir() -> Path:
    return studio_home() / "conversations"


def presets_path() -> Path:
    return studio_home() / "text_presets.json"


# --------------------------------------------------------------------------- data


@dataclass
class Message:
    role: str  # user | assistant
    content: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    created: float = field(default_factory=time.time)
    stats: dict[str, Any] = field(default_factory=dict)  # assistant messages: see TextSession.on_event

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(role=str(data.get("role", "user")), content=str(data.get("content", "")),
                   id=str(data.get("id") or uuid.uuid4().hex[:10]), created=float(data.get("created", 0) or 0),
                   stats=dict(data.get("stats") or {}))


@dataclass
class Conversation:
    id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    title: str = ""
    mode: str = CHAT
    system: str = DEFAULT_SYSTEM
    messages: list[Message] = field(default_factory=list)
    document: str = ""  # notebook mode
    document_stats: list[dict[str, Any]] = field(default_factory=list)  # one entry per notebook run
    model: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        first = next((m.content for m in self.messages if m.role == "user" and m.content.strip()), "")
        text = first or self.document
        text = " ".join(text.split())
        return (text[:48] + "…") if len(text) > 48 else (text or "New conversation")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["title"] = self.display_title
        data["format"] = "studio-conversation-1"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        conv = cls(id=str(data.get("id") or cls().id), title=str(data.get("title", "")),
                   mode=data.get("mode", CHAT) if data.get("mode") in (CHAT, NOTEBOOK) else CHAT,
                   system=str(data.get("system", "")), document=str(data.get("document", "")),
                   document_stats=list(data.get("document_stats") or []), model=str(data.get("model", "")),
                   sampling=dict(data.get("sampling") or {}), created=float(data.get("created", 0) or 0),
                   updated=float(data.get("updated", 0) or 0))
        conv.messages = [Message.from_dict(m) for m in data.get("messages") or [] if isinstance(m, dict)]
        return conv

    def to_markdown(self) -> str:
        lines = [f"# {self.display_title}", ""]
        meta = [f"Mode: {self.mode}"]
        if self.model:
            meta.append(f"Model: `{self.model}`")
        meta.append("Saved: " + time.strftime("%Y-%m-%d %H:%M", time.localtime(self.updated or time.time())))
        lines += [" · ".join(meta), ""]
        if self.mode == NOTEBOOK:
            lines += [self.document.rstrip(), ""]
            for stats in self.document_stats:
                lines.append(f"*{describe_stats(stats)}*  ")
            return "\n".join(lines).rstrip() + "\n"
        if self.system.strip():
            lines += ["## System", "", self.system.strip(), ""]
        for message in self.messages:
            lines += [f"## {message.role.capitalize()}", "", message.content.rstrip(), ""]
            if message.stats:
                lines += [f"*{describe_stats(message.stats)}*", ""]
        return "\n".join(lines).rstrip() + "\n"


def describe_stats(stats: dict[str, Any]) -> str:
    """One line for a message's statistics, e.g. '42 tokens · 31.5 tok/s · first token 0.08 s · ...'."""
    parts = []
    if "tokens" in stats:
        parts.append(f"{stats['tokens']} tokens")
    if stats.get("tokens_per_second"):
        parts.append(f"{stats['tokens_per_second']:.1f} tok/s")
    if stats.get("time_to_first_token") is not None:
        parts.append(f"first token {stats['time_to_first_token']:.2f} s")
    if stats.get("stop_reason"):
        parts.append(f"stop: {stats['stop_reason']}")
    if stats.get("seed") is not None:
        parts.append(f"seed {stats['seed']}")
    if stats.get("error"):
        parts.append(f"error: {stats['error']}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    mode: str
    updated: float
    path: Path


class ConversationStore:
    """One JSON file per conversation under ``<studio home>/conversations`` (written atomically)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else conversations_dir()

    def path(self, conversation_id: str) -> Path:
        safe = "".join(c for c in conversation_id if c.isalnum() or c in "-_") or "conversation"
        return self.folder / f"{safe}.json"

    def save(self, conversation: Conversation) -> Path:
        conversation.updated = time.time()
        path = self.path(conversation.id)
        write_text_atomic(path, json.dumps(conversation.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return path

    def load(self, conversation_id: str) -> Conversation:
        path = self.path(conversation_id)
        try:
            return Conversation.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ParamError(f"No saved conversation {conversation_id!r}.") from None
        except (OSError, ValueError) as exc:
            raise ParamError(f"Cannot read {path.name}: {exc}") from None

    def delete(self, conversation_id: str) -> None:
        try:
            self.path(conversation_id).unlink()
        except FileNotFoundError:
            pass

    def list(self) -> list[ConversationInfo]:
        """Newest first; unreadable files are skipped."""
        out = []
        for path in self.folder.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                conv = Conversation.from_dict(data)
            except (OSError, ValueError):
                continue
            out.append(ConversationInfo(conv.id, conv.display_title, conv.mode, conv.updated, path))
        return sorted(out, key=lambda info: info.updated, reverse=True)


class PresetStore:
    """Built-in sampling presets plus the user's own, kept in ``<studio home>/text_presets.json``."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else presets_path()
        self._user = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): {kk: vv for kk, vv in v.items() if kk in SAMPLING_KEYS}
                for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        return list(BUILTIN_PRESETS) + sorted(n for n in self._user if n not in BUILTIN_PRESETS)

    def is_builtin(self, name: str) -> bool:
        return name in BUILTIN_PRESETS

    def get(self, name: str) -> dict[str, Any]:
        if name in BUILTIN_PRESETS:
            return dict(BUILTIN_PRESETS[name])
        if name in self._user:
            return dict(self._user[name])
        raise ParamError(f"No preset named {name!r}.")

    def save(self, name: str, values: dict[str, Any]) -> None:
        name = name.strip()
        if not name:
            raise ParamError("A preset needs a name.")
        if name in BUILTIN_PRESETS:
            raise ParamError(f"{name!r} is a built-in preset; choose another name.")
        self._user[name] = {k: values[k] for k in SAMPLING_KEYS if k in values}
        write_text_atomic(self.path, json.dumps(self._user, indent=2) + "\n")

    def delete(self, name: str) -> None:
        if name in BUILTIN_PRESETS:
            raise ParamError(f"{name!r} is built in and cannot be deleted.")
        if self._user.pop(name, None) is not None:
            write_text_atomic(self.path, json.dumps(self._user, indent=2) + "\n")
