"""The Text panel's view-model: conversations, presets, streaming bookkeeping, autosave, export.

Plain Python (no Qt, no torch).  The panel shows what this holds and forwards clicks to it;
engine events reach :meth:`TextSession.on_event` (on the GUI thread in the studio, on any one
thread in tests and the CLI).

Chat mode keeps a list of :class:`Message`; Notebook mode keeps one editable document that
the model continues.  Each finished (or stopped) generation records its statistics on the
message it wrote: tokens, tokens/s, time to first token, stop reason, seed, and the notice
when the prompt had to be trimmed to fit the model's context.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.core.atomic import write_text_atomic
from studio.core.jobs import Failed, Job, JobSpec, JobState, ModelLoaded, StateChanged
from studio.core.settings import studio_home
from studio.plugin_api import Kind, ModelChoice, ParamError, Partial, Result

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


# --------------------------------------------------------------------------- the session


class TextSession:
    kind = Kind.TEXT

    def __init__(self, context, plugin_id: str | None = None, store: ConversationStore | None = None):
        self.context = context
        plugins = context.registry.plugins(Kind.TEXT)
        if plugin_id is None and plugins:
            plugin_id = plugins[0].id
        self.plugin = context.registry.get(plugin_id) if plugin_id else None
        self.store = store or ConversationStore()
        self.presets = PresetStore()
        self.values: dict[str, Any] = {p.name: p.default for p in self.parameters()
                                       if p.name in SAMPLING_KEYS or p.name in ("seed", "stop", "ignore_eos")}
        self.values["seed"] = -1
        self.model: str = self._first_model()
        self.conversation = Conversation(model=self.model, sampling=self.sampling())
        self.job: Job | None = None  # the generation (or load) in flight
        self._seen_finished: set[str] = set()
        self._target: Message | None = None  # the message being written
        self._notebook_run: dict[str, Any] | None = None
        self.loaded_model: str = ""  # the source last loaded successfully
        self.last_info: dict[str, Any] = {}
        self.notice: str = ""  # the latest trimming / error notice for the panel
        #: called after every change the view should show: ("partial", text), ("changed", None),
        #: ("loaded", source) or ("finished", job)
        self.on_change: Callable[[str, Any], None] | None = None

    # -- what the panel shows -------------------------------------------------------------
    def parameters(self):
        return list(self.plugin.parameters()) if self.plugin else []

    def models(self) -> list[ModelChoice]:
        offered = list(self.plugin.models()) if self.plugin else []
        known = {m.source for m in offered}
        recent = self.context.settings.recent_models.get(self.plugin.id, []) if self.plugin else []
        return offered + [ModelChoice(source=s, label=Path(s).name or s) for s in recent if s not in known]

    def _first_model(self) -> str:
        models = self.models()
        return models[0].source if models else ""

    def sampling(self) -> dict[str, Any]:
        return {k: self.values[k] for k in (*SAMPLING_KEYS, "seed") if k in self.values}

    @property
    def busy(self) -> bool:
        """True from submit until :meth:`on_event` has seen the job's final state (not merely
        until the worker thread finished it: events may still be on their way to the view)."""
        return self.job is not None and self.job.id not in self._seen_finished

    @property
    def mode(self) -> str:
        return self.conversation.mode

    def set_mode(self, mode: str) -> None:
        if mode not in (CHAT, NOTEBOOK):
            raise ParamError(f"Mode must be chat or notebook (got {mode!r}).")
        self.conversation.mode = mode

    def set_model(self, source: str) -> None:
        self.model = source.strip()
        self.conversation.model = self.model

    def set_values(self, **values: Any) -> None:
        for key, value in values.items():
            if key not in self.values:
                raise ParamError(f"Unknown setting {key!r}.")
            self.values[key] = value
        self.conversation.sampling = self.sampling()

    # -- presets -----------------------------------------------------------------------------
    def apply_preset(self, name: str) -> dict[str, Any]:
        values = self.presets.get(name)
        self.set_values(**{k: v for k, v in values.items() if k in self.values})
        return values

    def save_preset(self, name: str) -> None:
        self.presets.save(name, self.sampling())

    # -- context meter -----------------------------------------------------------------------
    def context_usage(self) -> tuple[int, int]:
        """(tokens used, model maximum); 0 maximum when no model is loaded yet."""
        model = self.loaded()
        maximum = int(getattr(model, "context_length", 0) or self.last_info.get("context_length", 0) or 0)
        used = 0
        if model is not None and not self.busy and hasattr(model, "count_tokens"):
            try:
                used = model.count_tokens(self._rendered_text(model))
            except Exception:  # noqa: BLE001 - a meter must never break the panel
                used = 0
        if not used and self.last_info:
            used = int(self.last_info.get("prompt_tokens", 0)) + int(self.last_info.get("tokens", 0))
        if not used:
            used = len(self._plain_text()) // 4
        return used, maximum

    def _plain_text(self) -> str:
        if self.mode == NOTEBOOK:
            return self.conversation.document
        return self.conversation.system + "".join(m.content for m in self.conversation.messages)

    def _rendered_text(self, model: Any) -> str:
        if self.mode == NOTEBOOK:
            return self.conversation.document
        messages = self._chat_messages(self.conversation.messages)
        if self.conversation.system.strip():
            messages = [{"role": "system", "content": self.conversation.system.strip()}] + messages
        if not messages:
            return ""
        return model.render_chat(messages, False)

    def loaded(self) -> Any:
        """The loaded model object for the current source, or None."""
        if not self.plugin:
            return None
        for model in self.context.engine.residency.loaded():
            if getattr(model, "source", None) == self.model and getattr(model, "tokenizer", None) is not None:
                return model
        return None

    # -- jobs --------------------------------------------------------------------------------
    def load_model(self) -> Job:
        self._require_plugin()
        if self.busy:
            raise ParamError("Wait for the current generation to finish (or stop it) first.")
        self.job = self.context.engine.submit(JobSpec(plugin_id=self.plugin.id, model=self.model, action="load",
                                                      options=self.context.load_options()))
        self._target = None
        return self.job

    def unload_model(self) -> None:
        """Free the current model (only while the engine is idle: models live on its thread)."""
        engine = self.context.engine
        if self.busy or engine.current is not None or engine.queued():
            raise ParamError("Wait for the running jobs to finish before unloading.")
        if self.plugin is not None:
            engine.residency.unload(engine.residency.key(self.plugin, self.model, self.context.load_options()))
        self.loaded_model = ""

    def send(self, text: str) -> Job:
        """Chat: add the user's message and generate a reply.  Notebook: append ``text`` (may be
        empty) to the document and continue it."""
        if self.mode == NOTEBOOK:
            self.conversation.document += text
            return self._generate_notebook()
        if not text.strip():
            raise ParamError("Write a message first.")
        self._check_idle()
        message = Message("user", text)
        self.conversation.messages.append(message)
        try:
            return self._generate_reply()
        except ParamError:
            self.conversation.messages.remove(message)  # nothing changes when the values are bad
            raise

    def regenerate(self) -> Job:
        """Chat: replace the last reply with a new one (same prompt).  Notebook: undo the last
        run's text and generate it again."""
        self._check_idle()
        if self.mode == NOTEBOOK:
            if self.conversation.document_stats:
                last = self.conversation.document_stats[-1]
                start = int(last.get("start", len(self.conversation.document)))
                self.conversation.document = self.conversation.document[:start]
                self.conversation.document_stats.pop()
            return self._generate_notebook()
        messages = self.conversation.messages
        if messages and messages[-1].role == "assistant":
            messages.pop()
        if not messages:
            raise ParamError("Nothing to regenerate yet.")
        return self._generate_reply()

    def continue_(self) -> Job:
        """Continue the last reply (chat) or the document (notebook) from where it stopped."""
        self._check_idle()
        if self.mode == NOTEBOOK:
            return self._generate_notebook()
        messages = self.conversation.messages
        if not messages:
            raise ParamError("Nothing to continue yet.")
        if messages[-1].role != "assistant":
            return self._generate_reply()
        return self._generate_reply(continue_last=True)

    def edit(self, index: int, content: str, generate: bool = True) -> Job | None:
        """Replace message ``index``; everything after it is dropped and generation resumes
        from there (a new reply after a user message, a continuation of an assistant one)."""
        self._check_idle()
        messages = self.conversation.messages
        if not 0 <= index < len(messages):
            raise ParamError(f"No message {index + 1}.")
        messages[index].content = content
        if messages[index].role == "assistant":
            messages[index].stats = {**messages[index].stats, "edited": True}
        del messages[index + 1:]
        self._changed()
        if not generate:
            self.autosave()
            return None
        if messages[index].role == "user":
            return self._generate_reply()
        return self._generate_reply(continue_last=True)

    def delete(self, index: int) -> None:
        self._check_idle()
        messages = self.conversation.messages
        if not 0 <= index < len(messages):
            raise ParamError(f"No message {index + 1}.")
        del messages[index]
        self._changed()
        self.autosave()

    def stop(self) -> None:
        """Stop the running generation and keep what was written."""
        if self.job is not None and not self.job.state.finished:
            self.context.engine.interrupt(self.job.id)

    def _check_idle(self) -> None:
        if self.busy:
            raise ParamError("Wait for the current generation to finish (or stop it) first.")

    def _require_plugin(self) -> None:
        if self.plugin is None:
            raise ParamError("No text plugin is available; see the Plugins list for why.")
        if not self.model:
            raise ParamError("Choose a model first.")

    @staticmethod
    def _chat_messages(messages: list[Message]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in messages if m.role in ("user", "assistant")]

    def _request(self) -> dict[str, Any]:
        request = {k: self.values[k] for k in SAMPLING_KEYS}
        seed = self.values.get("seed")
        request["seed"] = -1 if seed in (None, "") else seed
        if self.values.get("stop"):
            request["stop"] = list(self.values["stop"])
        if self.values.get("ignore_eos"):
            request["ignore_eos"] = True
        return request

    def _submit(self, mode: str, request: dict[str, Any]) -> Job:
        self._require_plugin()
        spec = JobSpec(plugin_id=self.plugin.id, model=self.model, mode=mode, request=request,
                       options=self.context.load_options(), save=False)
        job = self.context.engine.submit(spec)  # ParamError for bad values, before anything changes
        self.context.settings.remember_model(self.plugin.id, self.model)
        self.job = job
        self.conversation.model = self.model
        self.conversation.sampling = self.sampling()
        return job

    def _generate_reply(self, continue_last: bool = False) -> Job:
        self._check_idle()
        messages = self.conversation.messages
        request = self._request()
        request.update(messages=self._chat_messages(messages), system=self.conversation.system,
                       continue_last=continue_last)
        target = messages[-1] if continue_last else Message("assistant", "")
        job = self._submit(CHAT, request)
        if not continue_last:
            messages.append(target)
        target.stats = {**target.stats, "streaming": True}
        self._target = target
        self._changed()
        return job

    def _generate_notebook(self) -> Job:
        self._check_idle()
        request = self._request()
        request["prompt"] = self.conversation.document
        job = self._submit(NOTEBOOK, request)
        self._target = None
        self._notebook_run = {"start": len(self.conversation.document)}
        self._changed()
        return job

    # -- events --------------------------------------------------------------------------------
    def on_event(self, job: Job, event: object) -> None:
        """Feed engine events here (in order).  Only the session's current job is followed."""
        if job is not self.job:
            return
        if isinstance(event, ModelLoaded):
            self.loaded_model = event.source
            self._notify("loaded", event.source)
            return
        if isinstance(event, Partial):
            if job.spec.action == "load":
                return
            if self.mode == NOTEBOOK and self._notebook_run is not None:
                self.conversation.document += event.text
            elif self._target is not None:
                self._target.content += event.text
            self._notify("partial", event.text)
        elif isinstance(event, Result):
            info = dict(event.info)
            self.last_info = info
            stats = {k: info.get(k) for k in ("tokens", "tokens_per_second", "time_to_first_token",
                                              "stop_reason", "seed", "prompt_tokens", "context_length")}
            if info.get("trimmed"):
                stats["trimmed"] = info["trimmed"]
                self.notice = info["trimmed"]
            else:
                self.notice = ""
            if info.get("continued"):
                stats["continued"] = True
            if self.mode == NOTEBOOK and self._notebook_run is not None:
                self.conversation.document_stats.append({**self._notebook_run, **stats})
            elif self._target is not None:
                self._target.stats = stats
        elif isinstance(event, Failed):
            self.notice = event.message
            if self._target is not None:
                self._target.stats = {**{k: v for k, v in self._target.stats.items() if k != "streaming"},
                                      "error": event.message}
        elif isinstance(event, StateChanged) and event.state.finished:
            self._seen_finished.add(job.id)
            if job.spec.action == "load":
                if event.state is JobState.DONE:
                    self.loaded_model = job.spec.model
                self._notify("finished", job)
                return
            target = self._target
            if target is not None:
                target.stats.pop("streaming", None)
                if event.state is JobState.CANCELLED:
                    target.stats["stop_reason"] = "cancelled"
                if not target.content and target in self.conversation.messages and \
                        event.state in (JobState.FAILED, JobState.CANCELLED) and \
                        target is self.conversation.messages[-1]:
                    self.conversation.messages.remove(target)
            self.loaded_model = job.spec.model if event.state is not JobState.FAILED else self.loaded_model
            self._target = None
            self._notebook_run = None
            self.autosave()
            self._notify("finished", job)

    def _notify(self, what: str, payload: Any) -> None:
        if self.on_change is not None:
            self.on_change(what, payload)

    def _changed(self) -> None:
        self._notify("changed", None)

    # -- conversations -----------------------------------------------------------------------
    def autosave(self) -> Path | None:
        conv = self.conversation
        if not conv.messages and not conv.document.strip():
            return None
        return self.store.save(conv)

    def new_conversation(self, mode: str | None = None) -> Conversation:
        self._check_idle()
        self.autosave()
        self.conversation = Conversation(mode=mode or self.conversation.mode, system=self.conversation.system,
                                         model=self.model, sampling=self.sampling())
        self.last_info = {}
        self.notice = ""
        self._changed()
        return self.conversation

    def open_conversation(self, conversation_id: str) -> Conversation:
        self._check_idle()
        self.autosave()
        conv = self.store.load(conversation_id)
        self.conversation = conv
        if conv.model:
            self.model = conv.model
        for key, value in conv.sampling.items():
            if key in self.values:
                self.values[key] = value
        self.last_info = {}
        self.notice = ""
        self._changed()
        return conv

    def delete_conversation(self, conversation_id: str) -> None:
        self.store.delete(conversation_id)
        if conversation_id == self.conversation.id:
            self.conversation = Conversation(mode=self.conversation.mode, system=self.conversation.system,
                                             model=self.model, sampling=self.sampling())
            self._changed()

    def conversations(self) -> list[ConversationInfo]:
        return self.store.list()

    def export_markdown(self, path: str | Path) -> Path:
        path = Path(path)
        write_text_atomic(path, self.conversation.to_markdown())
        return path

    def export_json(self, path: str | Path) -> Path:
        path = Path(path)
        write_text_atomic(path, json.dumps(self.conversation.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    # -- "use as image prompt" ------------------------------------------------------------------
    def last_reply(self) -> str:
        if self.mode == NOTEBOOK:
            if self.conversation.document_stats:
                start = int(self.conversation.document_stats[-1].get("start", 0))
                return self.conversation.document[start:].strip()
            return self.conversation.document.strip()
        return next((m.content.strip() for m in reversed(self.conversation.messages)
                     if m.role == "assistant" and m.content.strip()), "")
