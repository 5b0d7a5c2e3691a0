"""The Music panel's view-model: the generator and its form, what the prompt was understood to
say, generation heard while it is written, and the clip list.

A :class:`~studio.core.sessions.base.PanelSession`; engine events reach :meth:`handle` on one
thread (the GUI thread through the bridge, which never drops an audio chunk; the CLI and tests
through :class:`~studio.core.sessions.inbox.EventInbox`).  Audio chunks go into the session's
:class:`~studio.core.playback.Player` as they are handled, so what is heard while generating is
sample for sample the clip that is saved.

Plugin abilities are read from capabilities, never from plugin ids: ``UnderstandsPrompts``
fills the controls a prompt speaks about (for the pre-filled prompt too, and for any prompt set
from code), ``ContinuesMidi`` marks symbolic generators (their clips carry MIDI).

Signals, besides the base's: ``changed`` names "understood" (the prompt's summary), "clip" (the
clip in the player and views), "plugin"; ``results_changed`` means the clip list changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.atomic import write_bytes_atomic
from studio.core.audio_files import read_wav, wav_bytes
from studio.core.context import StudioContext
from studio.core.jobs import Job, JobState, Saved
from studio.core.playback import Player
from studio.core.sessions.base import PanelSession
from studio.plugin_api import (
    ContinuesMidi,
    Kind,
    ParamError,
    Plugin,
    Preview,
    Result,
    UnderstandsPrompts,
)
from studio.plugin_kit.midi import MidiError, read_midi
from studio.plugin_kit.midi import TimedNote as Note
from studio.plugin_kit.sources import FILE, FOLDER, classify

__all__ = ["Clip", "MusicSession", "Note", "Understood"]


@dataclass
class Clip:
    """One clip in the history: its WAV, its MIDI (symbolic clips) and what made it."""

    path: Path
    parameters: dict[str, Any]
    seed: int | None = None
    output_id: int | None = None
    midi_path: Path | None = None

    @property
    def title(self) -> str:
        prompt = str(self.parameters.get("prompt") or "").strip() or "(no prompt)"
        seconds = self.parameters.get("seconds")
        extra = f" · {float(seconds):.1f} s" if seconds else ""
        return f"{prompt[:60]}{extra} · seed {self.seed if self.seed is not None else '?'}"

    @property
    def symbolic(self) -> bool:
        return self.midi_path is not None and self.midi_path.exists()

    @classmethod
    def at(cls, path: Path | str, parameters: dict[str, Any], seed: int | None, output_id: int | None) -> Clip:
        path = Path(path)
        midi = path.with_suffix(".mid")
        return cls(path=path, parameters=dict(parameters), seed=seed, output_id=output_id,
                   midi_path=midi if midi.exists() else None)


@dataclass
class Understood:
    """What the prompt said, as control values and one line of text."""

    values: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def has_model_on_disk(plugin: Plugin) -> bool:
    """Whether the plugin's first offered model is a local folder or file (it works offline)."""
    offered = list(plugin.models())
    return bool(offered) and classify(offered[0].source) in (FOLDER, FILE)


class MusicSession(PanelSession):
    kind = Kind.MUSIC

    def __init__(self, context: StudioContext, plugin_id: str | None = None, player: Player | None = None,
                 autoplay: bool = True) -> None:
        self.player = player or Player()
        self.autoplay = autoplay
        self.current: Clip | None = None
        self.notes: list[Note] = []
        self.understood = Understood()
        self._from_prompt: set[str] = set()  # the fields the current prompt filled in
        self.streaming = False
        self._new_audio: list[tuple[Any, int]] = []  # chunks the views have not drawn yet
        self._streamed_frames = 0
        self._stream_job: Job | None = None  # the job whose chunks are in the player
        self.last_error = ""
        if plugin_id is None:
            ordered = self.ordered_plugins(context)
            plugin_id = ordered[0].id if ordered else None
        super().__init__(context, plugin_id)  # reads the pre-filled prompt (_reset_plugin_state)

    # -- plugins, models, form -------------------------------------------------------------
    @staticmethod
    def ordered_plugins(context: StudioContext) -> list[Plugin]:
        """Music plugins, those whose default model is on disk first (they work without
        downloads), symbolic ones (``ContinuesMidi``) first among equals."""
        found = context.registry.plugins(Kind.MUSIC)
        return sorted(found, key=lambda p: (not has_model_on_disk(p), not isinstance(p, ContinuesMidi), p.id))

    def plugins(self) -> list[Plugin]:
        return self.ordered_plugins(self.context)

    @property
    def symbolic(self) -> bool:
        """Whether the chosen generator writes MIDI (and can continue a MIDI clip)."""
        return isinstance(self.plugin, ContinuesMidi)

    def _reset_plugin_state(self) -> None:
        super()._reset_plugin_state()
        self._from_prompt = set()
        self._understand_prompt()  # the pre-filled prompt speaks too (#14)

    def set_plugin(self, plugin_id: str) -> None:
        """Switch generator: its own models and defaults; the prompt is kept and read again."""
        prompt = str(self.values.get("prompt") or "")
        try:
            super().set_plugin(plugin_id)
        except LookupError as exc:
            raise ParamError(str(exc)) from None
        if prompt and "prompt" in self.values:
            self.set_prompt(prompt)

    def set_value(self, name: str, value: Any) -> None:
        self.set_values({name: value})

    def set_values(self, values: dict[str, Any]) -> None:
        """Form edits and code alike: a prompt is read for what it says; any other value is
        the user's own choice, which a later prompt edit leaves alone."""
        values = dict(values)
        prompt = values.pop("prompt", None)
        self._from_prompt -= set(values)
        if values:
            super().set_values(values)
        if prompt is not None:
            self.set_prompt(str(prompt))

    def set_prompt(self, text: str) -> Understood:
        """Store the prompt and fill the controls it speaks about (key, scale, tempo,
        instrument, length), so the user sees exactly what was understood."""
        if self.values.get("prompt") != text:
            self.values["prompt"] = text
            self._understand_prompt()
            self.changed.emit("values")
        return self.understood

    def _understand_prompt(self) -> None:
        plugin: object = self.plugin  # a capability is checked on the object, whatever protocol it is typed as
        if not isinstance(plugin, UnderstandsPrompts):
            self.understood = Understood()
            self.changed.emit("understood")
            return
        text = str(self.values.get("prompt") or "")
        names = {p.name for p in self.parameters()}
        said = {k: v for k, v in plugin.understand_prompt(text).items() if k in names and k != "prompt"}
        # What an earlier version of the prompt filled in, and this one no longer says, goes
        # back to its default, so the controls show only what the prompt says now.
        defaults = {p.name: p.default for p in self.parameters()}
        for name in self._from_prompt - set(said):
            self.values[name] = defaults.get(name)
        self._from_prompt = set(said)
        self.values.update(said)
        self.understood = Understood(said, plugin.describe_understood(said) if text.strip() else "")
        self.changed.emit("understood")

    # -- generating ----------------------------------------------------------------------
    def generate(self, **overrides: Any) -> Job:
        """Queue the current values (ParamError for bad input, before anything changes);
        ``overrides`` are JobSpec fields (the CLI's exact output ``targets``)."""
        spec = self.job_spec(**overrides)
        job = self.submit(spec)
        self.last_error = ""
        if self.plugin is not None:
            self.context.settings.remember_model(self.plugin.id, self.model)
        return job

    def on_preview(self, job: Job, event: Preview) -> None:
        if event.audio is not None:
            if self._stream_job is not job:  # its first chunk: the new clip replaces what was playing
                self._stream_job = job
                self._streamed_frames = 0
                self._new_audio = []
                self.streaming = True
                self.current = None
                self.notes = []
                if self.player.playing:
                    self.player.pause()
                self.player.begin_stream(event.sample_rate)
                self.player.append(event.audio)
                if self.autoplay:
                    self.player.play()
                self.changed.emit("clip")
            else:
                self.player.append(event.audio)
            self._streamed_frames += len(event.audio)
            self._new_audio.append((event.audio, event.sample_rate))
        self.changed.emit("preview")

    def take_new_audio(self) -> list[tuple[Any, int]]:
        """The streamed chunks not drawn yet (for the waveform), oldest first."""
        chunks, self._new_audio = self._new_audio, []
        return chunks

    def on_result(self, job: Job, event: Result) -> None:
        self.player.end_stream()

    def on_saved(self, job: Job, event: Saved) -> None:
        clip = Clip.at(event.path, event.artifact.parameters, event.artifact.seed, event.output_id)
        self.current = clip
        self.notes = self.read_notes(clip)
        audio = event.artifact.audio
        streamed = self._streamed_frames if self._stream_job is job else 0
        self.streaming = False
        if audio is not None and streamed != len(audio):
            # Nothing (or not exactly the clip) was streamed: the player gets the final clip.
            position = self.player.position
            self.player.load(audio, event.artifact.sample_rate)
            self.player.seek(position)
        self.player.end_stream()
        self.changed.emit("clip")
        self.results_changed.emit()

    def on_finished(self, job: Job, state: JobState) -> None:
        if state in (JobState.CANCELLED, JobState.FAILED):
            self.player.end_stream()
            self.streaming = False
            if state is JobState.FAILED:
                self.last_error = job.message

    # -- history ---------------------------------------------------------------------------
    def clips(self, limit: int = 200) -> list[Clip]:
        """The clip list, newest first (files that were deleted meanwhile are left out)."""
        return [Clip.at(record.path, dict(record.parameters), record.seed, record.id)
                for record in self.context.history.outputs(Kind.MUSIC.value, limit) if Path(record.path).exists()]

    def open_clip(self, clip: Clip) -> None:
        """Put a clip from the history into the player and the views."""
        audio, rate = read_wav(str(clip.path))
        if self.player.playing:
            self.player.stop()
        self.player.load(audio, rate)
        self.current = clip
        self.notes = self.read_notes(clip)
        self.changed.emit("clip")

    def restore(self, clip: Clip) -> None:
        """Put a clip's settings back into the form (its generator, model and values)."""
        plugin_id = clip.parameters.get("plugin")
        if plugin_id and (self.plugin is None or plugin_id != self.plugin.id):
            self.set_plugin(str(plugin_id))
        names = {p.name for p in self.parameters()}
        restored = {k: v for k, v in clip.parameters.items() if k in names and k not in ("sample_rate", "prompt")}
        if clip.seed is not None and "seed" in names:
            restored["seed"] = clip.seed
        self.values["prompt"] = str(clip.parameters.get("prompt") or "")
        self._understand_prompt()
        # The clip records what was applied; where that is what the prompt says, the field
        # stays "from the prompt" (a later prompt edit may change it), else it is a choice.
        self.values.update(restored)
        self._from_prompt = {k for k in self._from_prompt if restored.get(k, self.values.get(k)) ==
                             self.understood.values.get(k)}
        source = clip.parameters.get("model_source")
        if source:
            self.set_model(str(source))
        self.changed.emit("values")

    def read_notes(self, clip: Clip | None) -> list[Note]:
        """The clip's notes in seconds, for the piano roll (read with the kit's MIDI codec);
        an unreadable MIDI file is one warning, and the clip still plays."""
        if clip is None or clip.midi_path is None or not clip.symbolic:
            return []
        try:
            return read_midi(clip.midi_path.read_bytes()).timed_notes()
        except (OSError, MidiError) as exc:
            self.message.emit("warning", f"Cannot show the notes of {clip.midi_path.name}: {exc}")
            return []

    # -- export ----------------------------------------------------------------------------
    def export_wav(self, clip: Clip, target: str | Path) -> Path:
        """Write the clip as WAV with its prompt, seed, model and parameters in LIST/INFO."""
        target = Path(target)
        if target.suffix.lower() != ".wav":
            target = target.with_suffix(".wav")
        audio, rate = read_wav(str(clip.path))
        parameters = dict(clip.parameters)
        parameters.setdefault("seed", clip.seed)
        write_bytes_atomic(target, wav_bytes(audio, rate, parameters))
        return target

    def export_midi(self, clip: Clip, target: str | Path) -> Path:
        if clip.midi_path is None or not clip.symbolic:
            raise ParamError("Only clips from a symbolic model have MIDI to export.")
        target = Path(target)
        if target.suffix.lower() not in (".mid", ".midi"):
            target = target.with_suffix(".mid")
        write_bytes_atomic(target, clip.midi_path.read_bytes())
        return target

    @staticmethod
    def describe(clip: Clip) -> str:
        return json.dumps(clip.parameters, indent=1, default=str)

    def close(self) -> None:
        self.player.close()
