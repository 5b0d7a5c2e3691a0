"""The Music panel's view-model: form values, parsed prompt, generation with streamed
preview, clip history (persisted through the studio history), playback and export.

Plain Python (no Qt): the panel shows what this holds and forwards clicks to it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.atomic import write_bytes_atomic
from studio.core.context import StudioContext
from studio.core.jobs import Job, JobSpec, JobState, Saved, StateChanged
from studio.core.playback import Player
from studio.plugin_api import Kind, ModelChoice, Param, ParamError, Preview, Result

# The fields a prompt can fill in (only plugins that have them get them).
PROMPT_FIELDS = ("key", "scale", "tempo", "instrument", "seconds")


@dataclass
class Note:
    start: float  # seconds
    duration: float
    pitch: int
    voice: int


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


@dataclass
class Understood:
    """What the prompt said, as control values and one line of text."""

    values: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


class MusicSession:
    kind = Kind.MUSIC

    def __init__(self, context: StudioContext, plugin_id: str | None = None, player: Player | None = None):
        self.context = context
        self.player = player or Player()
        self.plugin = None
        self.model = ""
        self.values: dict[str, Any] = {}
        self.job: Job | None = None
        self.streaming = False
        self.current: Clip | None = None
        self.notes: list[Note] = []
        self.understood = Understood()
        self.last_error = ""
        self._from_prompt: set[str] = set()
        self.autoplay = True
        # Audio chunks go to the player straight from the engine's worker thread: no chunk is
        # ever dropped (the GUI bridge coalesces previews) and the first one is heard at once.
        self._lock = threading.Lock()
        self._submitting = False
        self._new_audio: list[tuple[Any, int]] = []  # chunks the views have not drawn yet
        self._streamed_frames = 0
        self._unsubscribe = context.engine.subscribe(self._on_engine_event)
        plugins = self.plugins()
        if plugin_id is None and plugins:
            plugin_id = plugins[0].id
        if plugin_id:
            self.set_plugin(plugin_id)

    # -- plugins, models, form -------------------------------------------------------------
    def plugins(self) -> list:
        found = self.context.registry.plugins(Kind.MUSIC)
        # The embedded symbolic model first: it always works, without downloads.
        return sorted(found, key=lambda p: (p.id != "chorale", p.id))

    def set_plugin(self, plugin_id: str) -> None:
        self.plugin = self.context.registry.get(plugin_id)
        self.values = {p.name: p.default for p in self.parameters()}
        self._from_prompt: set[str] = set()
        models = self.models()
        self.model = models[0].source if models else ""
        self.understood = Understood()

    def parameters(self) -> list[Param]:
        return list(self.plugin.parameters()) if self.plugin else []

    def models(self) -> list[ModelChoice]:
        offered = list(self.plugin.models()) if self.plugin else []
        known = {m.source for m in offered}
        recent = self.context.settings.recent_models.get(self.plugin.id, []) if self.plugin else []
        return offered + [ModelChoice(source=s, label=Path(s).name or s) for s in recent if s not in known]

    def set_model(self, source: str) -> None:
        self.model = source.strip()

    def set_value(self, name: str, value: Any) -> None:
        self.values[name] = value
        self._from_prompt.discard(name)  # the user's own choice now; a prompt edit keeps it

    def set_prompt(self, text: str) -> Understood:
        """Store the prompt and fill the controls it speaks about (key, scale, tempo,
        instrument, length) so the user sees exactly what was understood."""
        self.values["prompt"] = text
        names = {p.name for p in self.parameters()}
        if not names & set(PROMPT_FIELDS[:4]):  # this plugin does not read prompts that way
            self.understood = Understood()
            return self.understood
        try:
            from studio_music.prompt import parse_prompt
        except ImportError:  # the symbolic plugin is not installed
            self.understood = Understood()
            return self.understood
        parsed = parse_prompt(text)
        values = {k: v for k, v in parsed.as_values().items() if k in names}
        # What an earlier version of the prompt filled in, and this one no longer says, goes
        # back to its default, so the controls show only what the prompt says now.
        defaults = {p.name: p.default for p in self.parameters()}
        for name in self._from_prompt - set(values):
            self.values[name] = defaults.get(name)
        self._from_prompt = set(values)
        self.values.update(values)
        self.understood = Understood(values, parsed.summary())
        return self.understood

    # -- generating ----------------------------------------------------------------------
    def request_values(self) -> dict[str, Any]:
        names = {p.name for p in self.parameters()}
        return {k: v for k, v in self.values.items() if k in names}

    def generate(self) -> Job:
        if self.plugin is None:
            raise ParamError("No music plugin is available; see the Plugins list for why.")
        spec = JobSpec(plugin_id=self.plugin.id, model=self.model, request=self.request_values(),
                       options=self.context.load_options())
        with self._lock:
            self.streaming = False
            self._new_audio = []
            self._streamed_frames = 0
            self.last_error = ""
            self._submitting = True
        try:
            job = self.context.engine.submit(spec)
        finally:
            self._submitting = False
        self.job = job
        self.context.settings.remember_model(self.plugin.id, self.model)
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.context.engine.cancel(self.job.id)

    def interrupt(self) -> None:
        if self.job is not None:
            self.context.engine.interrupt(self.job.id)

    def _on_engine_event(self, job: Job, event: object) -> None:
        """Engine worker thread: audio chunks of this session's job go to the player now."""
        if isinstance(event, StateChanged) and event.state is JobState.QUEUED and self._submitting:
            self.job = job  # adopted before submit() returns, so no chunk can be missed
            return
        if job is not self.job or not isinstance(event, Preview) or event.audio is None:
            return
        with self._lock:
            if not self.streaming:
                self.streaming = True
                self.current = None
                self.notes = []
                if self.player.playing:
                    self.player.pause()
                self.player.begin_stream(event.sample_rate)
                self.player.append(event.audio)
                if self.autoplay:
                    self.player.play()
            else:
                self.player.append(event.audio)
            self._streamed_frames += len(event.audio)
            self._new_audio.append((event.audio, event.sample_rate))

    def take_new_audio(self) -> list[tuple[Any, int]]:
        """The streamed chunks not drawn yet (for the waveform), oldest first."""
        with self._lock:
            chunks, self._new_audio = self._new_audio, []
        return chunks

    def handle(self, job: Job, event: object) -> Clip | None:
        """Feed one engine event (the panel calls this on the GUI thread; audio chunks already
        reached the player from the worker thread).  Returns the new clip when one was saved."""
        if job is not self.job:
            return None
        if isinstance(event, Result):
            self.player.end_stream()
        elif isinstance(event, Saved):
            clip = self._clip_from(event.path, event.artifact.parameters, event.artifact.seed, event.output_id)
            self.current = clip
            self.notes = self.read_notes(clip)
            with self._lock:
                streamed = self._streamed_frames
                was_streaming, self.streaming = self.streaming, False
            audio = event.artifact.audio
            if not was_streaming or streamed != len(audio):
                # Nothing (or not exactly the clip) was streamed: the player gets the final clip.
                position = self.player.position
                self._load_audio(audio, event.artifact.sample_rate)
                self.player.seek(position)
            self.player.end_stream()
            return clip
        elif isinstance(event, StateChanged) and event.state in (JobState.CANCELLED, JobState.FAILED):
            self.player.end_stream()
            with self._lock:
                self.streaming = False
            if event.state is JobState.FAILED:
                self.last_error = event.message
        return None

    # -- history ---------------------------------------------------------------------------
    def clips(self, limit: int = 200) -> list[Clip]:
        found = []
        for record in self.context.history.outputs(Kind.MUSIC.value, limit):
            path = Path(record.path)
            if path.exists():
                found.append(self._clip_from(path, dict(record.parameters), record.seed, record.id))
        return found

    @staticmethod
    def _clip_from(path: Path, parameters: dict, seed, output_id) -> Clip:
        path = Path(path)
        midi = path.with_suffix(".mid")
        return Clip(path=path, parameters=dict(parameters), seed=seed, output_id=output_id,
                    midi_path=midi if midi.exists() else None)

    def open_clip(self, clip: Clip) -> None:
        """Put a clip from the history into the player and the views."""
        from studio.core.audio_files import read_wav

        audio, rate = read_wav(str(clip.path))
        self.player.stop() if self.player.playing else None
        self._load_audio(audio, rate)
        self.current = clip
        self.notes = self.read_notes(clip)

    def _load_audio(self, audio, rate: int) -> None:
        self.player.load(audio, rate)

    def restore(self, clip: Clip) -> None:
        """Put a clip's settings back into the form (its plugin, model and values)."""
        plugin_id = clip.parameters.get("plugin")
        if plugin_id and (self.plugin is None or plugin_id != self.plugin.id):
            self.set_plugin(plugin_id)
        names = {p.name for p in self.parameters()}
        for key, value in clip.parameters.items():
            if key in names and key != "sample_rate":
                self.values[key] = value
        if clip.seed is not None and "seed" in names:
            self.values["seed"] = clip.seed
        source = clip.parameters.get("model_source")
        if source:
            self.model = source

    @staticmethod
    def read_notes(clip: Clip | None) -> list[Note]:
        if clip is None or not clip.symbolic:
            return []
        try:
            from studio_music.midi import read_midi
        except ImportError:
            return []
        song = read_midi(clip.midi_path.read_bytes())
        seconds_per_tick = 60.0 / song.tempo_bpm / song.ticks_per_quarter
        return [Note(n.start * seconds_per_tick, n.duration * seconds_per_tick, n.pitch, n.voice)
                for n in song.notes]

    # -- export ----------------------------------------------------------------------------
    def export_wav(self, clip: Clip, target: str | Path) -> Path:
        """Write the clip as WAV with its prompt, seed, model and parameters in LIST/INFO."""
        from studio.core.audio_files import read_wav, wav_bytes

        target = Path(target)
        if target.suffix.lower() != ".wav":
            target = target.with_suffix(".wav")
        audio, rate = read_wav(str(clip.path))
        parameters = dict(clip.parameters)
        parameters.setdefault("seed", clip.seed)
        write_bytes_atomic(target, wav_bytes(audio, rate, parameters))
        return target

    def export_midi(self, clip: Clip, target: str | Path) -> Path:
        if not clip.symbolic:
            raise ParamError("Only symbolic clips (the chorale model) have MIDI to export.")
        target = Path(target)
        if target.suffix.lower() not in (".mid", ".midi"):
            target = target.with_suffix(".mid")
        write_bytes_atomic(target, clip.midi_path.read_bytes())
        return target

    @staticmethod
    def describe(clip: Clip) -> str:
        return json.dumps(clip.parameters, indent=1, default=str)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.player.close()
