"""A loaded MusicGen: generation on a helper thread, audio decoded and streamed as it comes.

Streaming: MusicGen's ``generate`` in this transformers line hands a ``streamer`` only the
prompt (its sampling loop is started without it), so the tokens are tapped from a stopping
criterion instead, which sees the whole sequence after every step.  A :class:`CodeStreamer`
runs there, on the generate thread: once enough new *complete* frames exist (MusicGen delays
codebook k by k steps) it decodes them with the EnCodec decoder, with a few frames of left
context, between two sampling steps, and hands the ``Preview`` to the run loop.  Decoding
there costs exactly the decode time (a decode on another thread fights the sampling loop for
the GIL, op by op, and slows both several-fold), so the measured decode time is the real
cost, and it is kept within a small share of the elapsed time; a decode is also made when
the listener would otherwise run out of audio.  The finished clip is decoded once from all
the codes, so it is exactly what ``generate`` itself would return, and the last preview is
the rest of that exact clip.

Cancel: a stopping criterion reads the cancel token, so generation stops within one step.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
from studio.plugin_kit.devices import dtype_named, pick_device
from studio.plugin_kit.seeds import pick_seed
from studio.plugin_kit.sources import looks_like_path
from studio.plugin_kit.streaming import ThreadStream
from studio_musicgen.audio_io import read_wav, resample

WINDOW_SECONDS = 30.0  # the published checkpoints were trained on 30 s clips
CONTEXT_FRAMES = 8  # left context for streamed decoding
# Streamed decoding may take at most this share of the wall time, so previews never slow the
# generation itself noticeably.  The decode time is measured where it is spent (between two
# sampling steps), so the share is the real cost.  The first preview comes once half the
# preview interval is there, whatever it costs (or, when generation is fast, with up to two
# intervals if those are there within FIRST_PREVIEW_WAIT: one decode then covers a listener for
# longer); later ones (in order, one or two intervals of audio each) while all the decoding so
# far plus the next decode stays within the budget, or when a listener is about to run out of
# audio (playback assumed to start with the first one).
PREVIEW_BUDGET = 0.01
FIRST_PREVIEW_WAIT = 0.15  # seconds after generation starts
PLAYBACK_MARGIN = 0.25  # seconds of streamed audio left to play that call for a decode, budget or not
PROGRESS_INTERVAL = 0.5  # seconds between progress reports from the run loop (each wakes it: kept rare)


def load_musicgen(source: str, options: LoadOptions, progress: Callable[[str], None]) -> LoadedMusicGen:
    from transformers import MusicgenForConditionalGeneration, MusicgenProcessor

    path = Path(source).expanduser()
    if looks_like_path(source) and not path.exists():
        raise FileNotFoundError(f"model folder not found: {source}")
    where = str(path) if path.exists() else source
    local_only = path.exists() or not options.allow_download
    progress(f"Loading MusicGen from {where}" + ("" if local_only else " (downloading if needed)"))
    device = pick_device(options.device)
    if (options.dtype or "auto") == "auto":
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
    else:
        dtype = dtype_named(options.dtype)
    try:
        model = MusicgenForConditionalGeneration.from_pretrained(where, local_files_only=local_only, dtype=dtype)
        processor = MusicgenProcessor.from_pretrained(where, local_files_only=local_only)
    except OSError as exc:
        if local_only and not path.exists():
            raise OSError(f"{source} is not on this computer; allow downloads in Settings to fetch it") from None
        raise OSError(f"cannot load MusicGen from {where}: {str(exc).splitlines()[0]}") from None
    model = model.to(device).eval()
    return LoadedMusicGen(source, model, processor, device)


class PreviewSchedule:
    """When to decode streamed audio and how much, over all the windows of one run.

    Frames are absolute (the given clip first); ``emitted`` frames have been streamed."""

    def __init__(self, every: int, given: int, frame_rate: float, started: float):
        self.every = every  # frames per preview (0: previews off)
        self.given = given
        self.emitted = given
        self.frame_rate = frame_rate
        self.started = started  # when generation began (perf_counter)
        self.decode_seconds = 0.0  # spent on streamed decoding so far, measured
        self.per_frame = 0.0  # seconds per decoded frame, measured on the last decode
        self.heard = False  # has the first preview of new audio gone out
        self.play_until: float | None = None  # when a listener will have played all streamed audio
        self.not_before = 0.0  # no decode can be due before this time (perf_counter)

    def wanted(self) -> int:
        """New complete frames needed before a decode can be due."""
        return max(1, self.every // 2) if not self.heard else self.every

    def frames_due(self, absolute: int, now: float) -> int:
        """How many frames to decode now (0: none), with ``absolute`` frames complete."""
        pending = absolute - self.emitted
        if not self.every or pending < self.wanted():
            return 0
        # Up to two intervals at once when behind: a longer decode costs less per frame.
        frames = min(pending, 2 * self.every)
        if not self.heard:
            return frames if frames == 2 * self.every or now - self.started >= FIRST_PREVIEW_WAIT else 0
        predicted = self.decode_seconds + self.per_frame * (frames + CONTEXT_FRAMES)
        if predicted <= PREVIEW_BUDGET * (now - self.started):
            return frames
        # Over budget, but the listener is about to run out (and has not yet): keep it fed.
        ahead = (self.play_until or now) - now
        if 0 < ahead < PLAYBACK_MARGIN:
            return frames
        # Neither can change before the budget has grown enough or the margin is reached.
        budget_at = self.started + predicted / PREVIEW_BUDGET if PREVIEW_BUDGET > 0 else math.inf
        self.not_before = min(budget_at, now + ahead - PLAYBACK_MARGIN if ahead > 0 else math.inf)
        return 0

    def record(self, frames: int, decoded: int, spent: float, now: float) -> None:
        """``frames`` new frames streamed, from a decode of ``decoded`` frames taking ``spent`` s."""
        self.decode_seconds += spent
        self.per_frame = spent / max(1, decoded)
        self.heard = self.heard or self.emitted + frames > self.given
        self.played(frames / self.frame_rate, now)
        self.emitted += frames

    def played(self, seconds: float, now: float) -> None:
        """``seconds`` more audio streamed at ``now``: a listener plays it after what it has (or at once)."""
        self.play_until = max(self.play_until or now, now) + seconds


class CodeStreamer:
    """Sees the token sequence after every step of one window's ``generate`` (from the stopping
    criterion, on the generate thread) and decodes a preview there when one is due; the run
    loop is woken only to hand previews on, and by its own timer for progress.

    ``generate`` builds a new ``input_ids`` tensor every step (it concatenates), so keeping a
    reference to the latest one is safe and costs nothing per step."""

    def __init__(self, model: LoadedMusicGen, schedule: PreviewSchedule, codes: torch.Tensor, context: int,
                 new: int, emit: Callable[[Preview], None]):
        self.model = model
        self.emit = emit  # hands a preview to the run loop (a ThreadStream's emit)
        self.schedule = schedule
        self.num_codebooks = model.num_codebooks
        self.codes = codes  # (K, N) on the CPU: every frame before this window's new ones
        self.base = codes.shape[-1] - context  # absolute frame of this window's frame 0
        self.limit = context + new  # frames this window will hold
        self.latest: torch.Tensor | None = None
        self.length = 0
        self._check_at = 0  # the next sequence length worth looking at

    def complete(self, length: int | None = None) -> int:
        """Complete frames of this window (context included) in a sequence of ``length``."""
        length = self.length if length is None else length
        return max(0, min(length - self.num_codebooks, self.limit))

    def update(self, input_ids: torch.Tensor, previews: bool = True) -> None:
        self.latest = input_ids
        length = self.length = input_ids.shape[-1]
        if length < self._check_at or not previews:
            return
        schedule, now = self.schedule, time.perf_counter()
        if now < schedule.not_before:
            return
        absolute = self.base + self.complete(length)
        frames = schedule.frames_due(absolute, now)
        if frames:
            self.emit(self._decode(input_ids, frames))
        # Nothing can be due before enough new frames exist; after that, time decides.
        self._check_at = length + max(1, schedule.emitted + schedule.wanted() - absolute) if schedule.every \
            else 1 << 62

    def _decode(self, sequence: torch.Tensor, frames: int) -> Preview:
        schedule, books = self.schedule, self.num_codebooks
        emitted = schedule.emitted
        start, end = max(0, emitted - CONTEXT_FRAMES), emitted + frames
        started = time.perf_counter()
        parts = []
        known = self.codes.shape[-1]
        if start < known:
            parts.append(self.codes[:, start:min(end, known)].to(sequence.device))
        first, last = max(start, known) - self.base, end - self.base  # this window's frames
        if last > first:
            parts.append(torch.stack([sequence[k, 1 + k + first:1 + k + last] for k in range(books)]))
        audio = self.model.decode(parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1))
        now = time.perf_counter()
        schedule.record(frames, end - start, now - started, now)
        hop = audio.shape[0] / (end - start)
        return Preview(step=end - schedule.given, audio=audio[int(round((emitted - start) * hop)):],
                       sample_rate=self.model.sample_rate)

    def sequence(self) -> torch.Tensor:
        latest = self.latest
        if latest is None:
            return torch.zeros(self.num_codebooks, 0, dtype=torch.long)
        return latest[: self.num_codebooks].to("cpu")


def undelay(sequence: torch.Tensor, num_codebooks: int) -> torch.Tensor:
    """Delayed (K, L) token sequence (position 0 = start token) -> complete frames (K, L - K)."""
    frames = sequence.shape[-1] - num_codebooks
    if frames <= 0:
        return sequence.new_zeros(num_codebooks, 0)
    return torch.stack([sequence[k, 1 + k:1 + k + frames] for k in range(num_codebooks)])


class _Tap:
    """A stopping criterion: hands the sequence to the streamer and reads the cancel token
    (called after every generated token, so a cancel stops within one step)."""

    def __init__(self, cancel: CancelToken, streamer: CodeStreamer, stream: ThreadStream[Preview]):
        self.cancel = cancel
        self.streamer = streamer
        self.stream = stream  # its consumer gone (the run was closed): stop as for a cancel
        self._answers: dict[bool, torch.Tensor | None] = {False: None, True: None}

    def __call__(self, input_ids, scores, **kwargs):
        stop = self.cancel.is_set or self.stream.consumer_gone
        self.streamer.update(input_ids, previews=not stop)
        answer = self._answers[stop]
        if answer is None or answer.shape[0] != input_ids.shape[0]:  # made once, reused (generate only reads it)
            answer = self._answers[stop] = torch.full((input_ids.shape[0],), stop, dtype=torch.bool,
                                                      device=input_ids.device)
        return answer


class LoadedMusicGen:
    def __init__(self, source: str, model, processor, device: str):
        self.source = source
        self.model = model
        self.processor = processor
        self.device = device
        self.memory_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        config = model.config
        self.sample_rate = int(config.audio_encoder.sampling_rate)
        self.frame_rate = float(config.audio_encoder.frame_rate)
        self.num_codebooks = int(config.decoder.num_codebooks)
        self.channels = int(config.decoder.audio_channels)
        positions = int(config.decoder.max_position_embeddings)
        self.window_frames = int(min(WINDOW_SECONDS * self.frame_rate, positions - self.num_codebooks - 1))
        self.defaults = {"seconds": min(8.0, self.window_frames / self.frame_rate)}
        self.choices: dict[str, list[Any]] = {}
        self.modes: tuple[str, ...] = ()  # the plugin has no run modes

    def unload(self) -> None:
        self.model = None
        self.processor = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    # -- codec ----------------------------------------------------------------------------
    def encode_clip(self, path: str) -> torch.Tensor:
        """A WAV file -> codes (K, P) in the model's interleaving (stereo: L/R alternate)."""
        try:
            audio, rate = read_wav(path)
        except ValueError as exc:
            raise ParamError(str(exc)[0].upper() + str(exc)[1:] + ".") from None
        audio = resample(audio, rate, self.sample_rate)
        if self.channels == 1:
            audio = audio.mean(axis=1, keepdims=True)
        elif audio.shape[1] == 1:
            audio = np.repeat(audio, 2, axis=1)
        encoder = self.model.audio_encoder
        values = torch.from_numpy(audio[:, : self.channels].T.copy())[None].to(self.device,
                                                                                 next(encoder.parameters()).dtype)
        with torch.inference_mode():
            halves = []
            for c in range(self.channels):
                codes = encoder.encode(values[:, c:c + 1], return_dict=True).audio_codes  # (1, 1, K', P)
                halves.append(codes[0, 0])
        if self.channels == 1:
            return halves[0][: self.num_codebooks].cpu()
        left, right = halves
        out = torch.empty(self.num_codebooks, left.shape[-1], dtype=left.dtype)
        out[0::2], out[1::2] = left[: self.num_codebooks // 2].cpu(), right[: self.num_codebooks // 2].cpu()
        return out

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (K, F) -> float32 audio (samples, channels)."""
        if codes.shape[-1] == 0:
            return np.zeros((0, self.channels), dtype=np.float32)
        codec = self.model.audio_encoder
        codes = codes.to(self.device)
        with torch.inference_mode():
            if self.channels == 1:
                audio = codec.decode(codes[None, None], [None]).audio_values[0]
            else:
                left = codec.decode(codes[None, None, 0::2], [None]).audio_values[0]
                right = codec.decode(codes[None, None, 1::2], [None]).audio_values[0]
                audio = torch.cat([left, right], dim=0)
        return audio.float().cpu().numpy().T.copy()

    # -- generation -----------------------------------------------------------------------
    def _inputs(self, prompt: str, guidance: float):
        inputs = self.processor(text=[prompt], padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in inputs.items()}

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[object]:
        started = time.perf_counter()
        prompt = str(request.get("prompt") or "")
        seconds = float(request["seconds"])
        seed = pick_seed(request.get("seed"))  # a fresh random 32-bit seed when none is given
        guidance = float(request.get("guidance") or 1.0)
        sampling = {
            "do_sample": True,
            "temperature": float(request.get("temperature") or 1.0),
            "top_k": int(request.get("top_k") or 0),
            "top_p": float(request.get("top_p") or 0.0) or 1.0,
            "guidance_scale": guidance if guidance > 1.0 else None,
        }
        books, fr = self.num_codebooks, self.frame_rate
        total_new = max(1, int(round(seconds * fr)))
        prompt_codes = None
        if request.get("continue_from"):
            prompt_codes = self.encode_clip(request["continue_from"])
            max_prompt = max(1, self.window_frames // 2)
            if prompt_codes.shape[-1] > max_prompt:
                yield Log(f"The clip is longer than {max_prompt / fr:.1f} s; its last {max_prompt / fr:.1f} s are "
                          "used as the starting point.", "warning")
                prompt_codes = prompt_codes[:, -max_prompt:]
        codes = prompt_codes if prompt_codes is not None else torch.zeros(books, 0, dtype=torch.long)
        given = codes.shape[-1]
        overlap = max(1, min(int(float(request.get("overlap_seconds") or 10.0) * fr), self.window_frames // 2))
        first_room = self.window_frames - given
        chunks = 1 if total_new <= first_room else 1 + math.ceil((total_new - first_room) /
                                                                    (self.window_frames - overlap))
        if chunks > 1:
            yield Log(f"{seconds:g} s is past the model's {self.window_frames / fr:.0f} s window: extending in "
                      f"{chunks} overlapping chunks ({overlap / fr:.0f} s of overlap).", "warning")
        preview_every = int(round(float(request.get("preview_seconds") if request.get("preview_seconds")
                                        is not None else 1.0) * fr))
        inputs = self._inputs(prompt, guidance)
        torch.manual_seed(int(seed))
        given_audio = self.decode(codes) if given and preview_every else None
        # The budget covers decoding while generating (the given clip's preview is made once, before).
        schedule = PreviewSchedule(preview_every, given, fr, time.perf_counter())
        if given_audio is not None:
            schedule.played(given / fr, time.perf_counter())
            yield Preview(step=0, audio=given_audio, sample_rate=self.sample_rate)
        made = 0
        interrupted = False
        for chunk in range(chunks):
            context = codes[:, -overlap:] if chunk > 0 else codes
            new = min(total_new - made, self.window_frames - context.shape[-1])
            stream: ThreadStream[Preview] = ThreadStream("musicgen-generate")
            streamer = CodeStreamer(self, schedule, codes, context.shape[-1], new, stream.emit)
            kwargs = dict(inputs, max_new_tokens=new + books - 1,
                          stopping_criteria=[_Tap(cancel, streamer, stream)], **sampling)
            if context.shape[-1]:
                kwargs["decoder_input_ids"] = context.to(self.device)
            returned: list[torch.Tensor] = []

            def work(kwargs: dict[str, Any] = kwargs, returned: list[torch.Tensor] = returned) -> None:
                with torch.inference_mode():
                    returned.append(self.model.generate(**kwargs))

            stream.start(work)
            reported = made
            with stream:  # closing the run stops generate (see _Tap) and waits for it
                # Woken by each preview, and by the timer for progress (the streamer's sequence
                # grows on the generate thread; reading its length here is safe).
                for ready in itertools.chain(stream.batches(timeout=PROGRESS_INTERVAL), [[]]):  # + a last look
                    step = made + max(0, streamer.complete() - context.shape[-1])
                    if step > reported:
                        reported = step
                        yield Progress(step, total_new, f"{step / fr:.1f} s of {total_new / fr:.1f} s")
                    yield from ready
            frames = undelay(streamer.sequence(), books)
            produced = frames[:, context.shape[-1]:context.shape[-1] + new]
            codes = torch.cat([codes, produced], dim=-1)
            made += produced.shape[-1]
            if cancel.is_set:
                if not cancel.keep_partial:
                    raise Cancelled()
                interrupted = True
                break
        emitted = schedule.emitted
        hop = self.sample_rate / fr
        if chunks == 1 and returned and returned[0].shape[-1] == int(round(codes.shape[-1] * hop)):
            # One window: generate already decoded exactly these codes; do not decode twice.
            audio = returned[0][0].float().cpu().numpy().T.copy()
        else:
            audio = self.decode(codes)
        if preview_every:
            # The rest of the clip streams from the final decode (no extra decoding work).
            tail = audio[int(round(emitted * hop)):]
            if len(tail):
                yield Preview(step=made, audio=tail, sample_rate=self.sample_rate)
        parameters = {
            "prompt": prompt, "seed": seed, "model": Path(self.source).name or self.source, "plugin": "musicgen",
            "seconds": made / fr, "guidance": guidance, "top_k": sampling["top_k"],
            "top_p": float(request.get("top_p") or 0.0), "temperature": sampling["temperature"],
            "sample_rate": self.sample_rate, "chunks": chunks,
        }
        if request.get("continue_from"):
            parameters["continue_from"] = str(request["continue_from"])
            parameters["given_seconds"] = given / fr
        artifact = Artifact(kind=Kind.MUSIC, audio=audio, sample_rate=self.sample_rate, seed=seed,
                            parameters=parameters)
        yield Result((artifact,), interrupted=interrupted,
                     info={"elapsed": time.perf_counter() - started, "frames": codes.shape[-1], "codes": codes})
