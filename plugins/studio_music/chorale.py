"""The loaded chorale model: sample, synthesize and stream bar by bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from studio.plugin_api import (
    Artifact,
    Cancelled,
    CancelToken,
    Kind,
    LoadOptions,
    Log,
    ParamError,
    Preview,
    Progress,
    Result,
)
from studio.plugin_kit.midi import MidiError
from studio.plugin_kit.seeds import pick_seed
from studio_music import DEFAULT_SECONDS, DEFAULT_TEMPO, EMBEDDED
from studio_music.clip import estimate_key, grid_to_midi, load_midi_file, seconds_per_step
from studio_music.prompt import parse_prompt
from studio_music.representation import STEPS_PER_BAR, key_name, pitch_class, tokens_to_notes
from studio_music.synth import Synth, SynthNote

FIRST_CHUNK_STEPS = 4  # one beat: the first audio goes out quickly
CHUNK_STEPS = STEPS_PER_BAR


def resolve_source(source: str) -> Path:
    if source.strip().lower() in ("", "embedded", "chorale", "default"):
        return EMBEDDED
    path = Path(source).expanduser()
    if path.is_file():
        path = path.parent
    return path


def load_chorale(source: str, options: LoadOptions, progress: Callable[[str], None]) -> LoadedChorale:
    folder = resolve_source(source)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"no chorale model in {folder} (needs config.json and model.safetensors)")

    from studio_music.model import load_model

    progress(f"Loading the chorale model from {folder}")
    net = load_model(folder)
    return LoadedChorale(str(source), net)


class LoadedChorale:
    device = "cpu"
    defaults = {"seconds": DEFAULT_SECONDS}
    choices: dict[str, list[Any]] = {}
    modes: tuple[str, ...] = ()  # the plugin has no run modes

    def __init__(self, source: str, net):
        from studio_music.model import Sampler

        self.source = source
        self.net = net
        self.sampler = Sampler(net)
        self.memory_bytes = sum(p.numel() * p.element_size() for p in net.parameters())

    def unload(self) -> None:
        self.net = None
        self.sampler = None

    # -- one run --------------------------------------------------------------------------
    def settings(self, request: Mapping[str, Any], prefix_notes=None, prefix_tempo=None, prefix_key=None) -> dict:
        """What the run will use: the request where it says something, else the prompt, else
        the loaded MIDI, else defaults.  Also used by the panel to show what was understood."""
        parsed = parse_prompt(str(request.get("prompt") or ""))
        estimated = prefix_key or (estimate_key(prefix_notes) if prefix_notes else None)
        key = request.get("key") or "auto"
        scale = request.get("scale") or "auto"
        if key == "auto":
            key = parsed.key or (key_name(estimated[0], estimated[1]).split()[0] if estimated else "C")
        if scale == "auto":
            scale = parsed.scale or (estimated[1] if estimated else "major")
        tempo = request.get("tempo") or parsed.tempo or prefix_tempo or DEFAULT_TEMPO
        instrument = request.get("instrument") or "auto"
        if instrument == "auto":
            instrument = parsed.instrument or "organ"
        seconds = request.get("seconds") or parsed.seconds or DEFAULT_SECONDS
        return {"key": key, "scale": scale, "tempo": float(tempo), "instrument": instrument, "seconds": float(seconds),
                "understood": parsed.summary()}

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[object]:
        # The network is tiny: one intra-op thread is fastest (more threads only spin and fight
        # over the cores).  The engine runs one job at a time, so borrowing the setting for the
        # run and putting it back afterwards does not disturb other models.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield from self._run(request, cancel)
        finally:
            torch.set_num_threads(threads)

    def _run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[object]:
        started = time.perf_counter()
        prefix = None
        prefix_tempo = None
        prefix_key = None
        source = request.get("continue_from")
        if source:
            try:
                prefix, prefix_tempo, prefix_key = load_midi_file(source)
            except MidiError as exc:
                raise ParamError(f"Cannot continue {Path(source).name}: {exc}.") from None
        chosen = self.settings(request, tokens_to_notes(prefix) if prefix is not None else None, prefix_tempo,
                               prefix_key)
        seed = pick_seed(request.get("seed"))  # a fresh random 32-bit seed when none is given
        tempo = chosen["tempo"]
        step_seconds = seconds_per_step(tempo)
        steps = max(1, int(round(chosen["seconds"] / step_seconds)))
        yield Log(f"Understood from the prompt: {chosen['understood']}. Writing {steps // STEPS_PER_BAR} bars "
                  f"in {chosen['key']} {chosen['scale']} at {tempo:g} BPM for {chosen['instrument']}.")
        sr = int(request.get("sample_rate") or 32000)
        synth = Synth(chosen["instrument"], sr)
        grid = np.zeros((0, 4), dtype=np.int64) if prefix is None else prefix.copy()
        prefix_steps = len(grid)
        rendered = 0  # samples handed out so far
        chunks: list[np.ndarray] = []

        def flush(done_steps: int, final: bool = False):
            nonlocal rendered
            notes = _synth_notes(grid, step_seconds, open_end=not final)
            end = int(np.ceil(synth.end_time(notes) * sr)) if final else int(round(done_steps * step_seconds * sr))
            if end <= rendered:
                return None
            chunk = synth.render_range(notes, rendered, end)
            rendered = end
            chunks.append(chunk)
            return chunk

        # The given bars sound first.
        if prefix_steps:
            chunk = flush(prefix_steps)
            if chunk is not None:
                yield Preview(step=0, audio=chunk, sample_rate=sr)
        rows = self.sampler.rows(steps, pitch_class(chosen["key"]), chosen["scale"],
                                 float(request.get("temperature") or 0.9), seed, prefix if prefix_steps else None,
                                 float(request.get("key_strength") if request.get("key_strength") is not None
                                       else 2.0),
                                 avoid_parallels=request.get("voice_leading", True) is not False)
        interrupted = False
        new_rows = []
        next_flush = FIRST_CHUNK_STEPS
        try:
            for index, row in enumerate(rows, start=1):
                new_rows.append(row)
                if cancel.is_set:
                    if not cancel.keep_partial:
                        raise Cancelled()
                    interrupted = True
                    break
                if index >= next_flush or index == steps:
                    grid = np.concatenate([grid, np.array(new_rows, dtype=np.int64)])
                    new_rows = []
                    chunk = flush(len(grid))
                    if chunk is not None:
                        yield Preview(step=index, audio=chunk, sample_rate=sr)
                    yield Progress(index, steps, f"bar {index // STEPS_PER_BAR + 1}")
                    next_flush = index + CHUNK_STEPS
        finally:
            rows.close()
        if new_rows:
            grid = np.concatenate([grid, np.array(new_rows, dtype=np.int64)])
        tail = flush(len(grid), final=True)
        if tail is not None:
            yield Preview(step=len(grid) - prefix_steps, audio=tail, sample_rate=sr)
        audio = np.concatenate(chunks) if chunks else np.zeros((1, 2), dtype=np.float32)
        prompt = str(request.get("prompt") or "")
        parameters = {
            "prompt": prompt, "seed": seed, "model": "chorale", "plugin": "chorale",
            "key": chosen["key"], "scale": chosen["scale"], "tempo": tempo, "instrument": chosen["instrument"],
            "seconds": chosen["seconds"], "temperature": float(request.get("temperature") or 0.9),
            "understood": chosen["understood"], "prefix_steps": prefix_steps, "steps": len(grid),
            "sample_rate": sr,
        }
        if source:
            parameters["continue_from"] = str(source)
        midi = grid_to_midi(grid, tempo, chosen["instrument"], title=prompt,
                            key=(pitch_class(chosen["key"]), chosen["scale"]))
        artifact = Artifact(kind=Kind.MUSIC, audio=audio, sample_rate=sr, midi=midi, seed=seed,
                            parameters=parameters)
        elapsed = time.perf_counter() - started
        yield Result((artifact,), interrupted=interrupted,
                     info={"seconds_of_music": len(audio) / sr, "elapsed": elapsed, "tokens": grid})


def _synth_notes(grid: np.ndarray, step_seconds: float, open_end: bool) -> list[SynthNote]:
    """Grid -> synth notes; with ``open_end`` a note still sounding on the last step has no end yet."""
    notes = []
    last = len(grid)
    for event in tokens_to_notes(grid):
        still = open_end and event.start + event.duration >= last
        notes.append(SynthNote(event.start * step_seconds, None if still else event.duration * step_seconds,
                               event.pitch, event.voice))
    return notes
