"""A loaded MusicGen: generation on a helper thread, audio decoded and streamed as it comes.

Streaming: MusicGen's ``generate`` in this transformers line hands a ``streamer`` only the
prompt (its sampling loop is started without it), so the tokens are tapped from a stopping
criterion instead, which sees the whole sequence after every step.  A :class:`CodeStreamer`
collects them;
once enough new *complete* frames exist (MusicGen delays codebook k by k steps) the run
loop decodes them with the EnCodec decoder, with a few frames of left context, and yields a
``Preview`` with the new samples (decoding is spaced out so it takes at most a small share
of the time).  The finished clip is decoded once from all the codes, so it is exactly what
``generate`` itself would return, and the last preview is the rest of that exact clip.

Cancel: a stopping criterion reads the cancel token, so generation stops within one step.
"""

from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from studio.plugin_api import (Artifact, CancelToken, Cancelled, Kind, LoadOptions, Log, ParamError, Preview,
                               Progress, Result)
from studio_musicgen.audio_io import read_wav, resample

WINDOW_SECONDS = 30.0  # the published checkpoints were trained on 30 s clips
CONTEXT_FRAMES = 8  # left context for streamed decoding
# Streamed decoding may take at most this share of the wall time, so previews never slow the
# generation itself noticeably (decodes are spaced out when they are slow next to generation).
# The first preview comes after half the preview interval; later ones only while all the
# decoding so far stays within the budget.
PREVIEW_BUDGET = 0.015


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or "\\" in source or source.count("/") != 1 or Path(source).exists()


def load_musicgen(source: str, options: LoadOptions, progress: Callable[[str], None]) -> "LoadedMusicGen":
    from transformers import MusicgenForConditionalGeneration, MusicgenProcessor

    path = Path(source).expanduser()
    if _looks_like_path(source) and not path.exists():
        raise FileNotFoundError(f"model folder not found: {source}")
    where = str(path) if path.exists() else source
    local_only = path.exists() or not options.allow_download
    progress(f"Loading MusicGen from {where}" + ("" if local_only else " (downloading if needed)"))
    from studio.torch_devices import dtype_named, pick_device

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


class CodeStreamer:
    """Holds the newest token sequence; wakes the consumer every ``every`` new tokens.

    ``generate`` builds a new ``input_ids`` tensor every step (it concatenates), so keeping a
    reference to the latest one is safe and costs nothing per step: no copies, no locks
    except when the consumer is to be woken."""

    def __init__(self, num_codebooks: int, every: int):
        self.num_codebooks = num_codebooks
        self.every = max(1, every)
        self.latest: torch.Tensor | None = None
        self.done = False
        self.cond = threading.Condition()
        self._next_wake = None

    @property
    def length(self) -> int:
        latest = self.latest
        return 0 if latest is None else latest.shape[-1]

    def update(self, input_ids: torch.Tensor) -> None:
        self.latest = input_ids
        length = input_ids.shape[-1]
        if self._next_wake is None:
            self._next_wake = length + self.every
        elif length >= self._next_wake:
            self._next_wake = length + self.every
            with self.cond:
                self.cond.notify_all()

    def end(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()

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
    """A stopping criterion: hands new tokens to the streamer and reads the cancel token
    (called after every generated token, so a cancel stops within one step)."""

    def __init__(self, cancel: CancelToken, streamer: CodeStreamer):
        self.cancel = cancel
        self.streamer = streamer
        self._answers: dict = {}

    def __call__(self, input_ids, scores, **kwargs):
        self.streamer.update(input_ids)
        key = (input_ids.shape[0], input_ids.device, self.cancel.is_set)
        answer = self._answers.get(key)
        if answer is None:  # made once, reused every step (generate only reads it)
            answer = self._answers[key] = torch.full(key[:1], key[2], dtype=torch.bool, device=key[1])
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
        seed = request.get("seed")
        if seed is None:
            seed = random.randrange(2**32)
        guidance = float(request.get("guidance") or 1.0)
        sampling = {
            "do_sample": True,
            "temperature": float(request.get("temperature") or 1.0),
            "top_k": int(request.get("top_k") or 0),
            "top_p": float(request.get("top_p") or 0.0) or 1.0,
            "guidance_scale": guidance if guidance > 1.0 else None,
        }
        K, fr = self.num_codebooks, self.frame_rate
        total_new = max(1, int(round(seconds * fr)))
        prompt_codes = None
        if request.get("continue_from"):
            prompt_codes = self.encode_clip(request["continue_from"])
            max_prompt = max(1, self.window_frames // 2)
            if prompt_codes.shape[-1] > max_prompt:
                yield Log(f"The clip is longer than {max_prompt / fr:.1f} s; its last {max_prompt / fr:.1f} s are "
                          "used as the starting point.", "warning")
                prompt_codes = prompt_codes[:, -max_prompt:]
        codes = prompt_codes if prompt_codes is not None else torch.zeros(K, 0, dtype=torch.long)
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
        emitted = given  # frames already streamed (the given clip is streamed first)
        decode_seconds = 0.0  # spent on streamed decoding so far
        per_frame = 0.0  # seconds per decoded frame, measured
        generation_started = time.perf_counter()
        if given and preview_every:
            yield Preview(step=0, audio=self.decode(codes), sample_rate=self.sample_rate)
        made = 0
        interrupted = False
        for chunk in range(chunks):
            context = codes[:, -overlap:] if chunk > 0 else codes
            new = min(total_new - made, self.window_frames - context.shape[-1])
            streamer = CodeStreamer(K, max(1, preview_every // 2) if preview_every else 10**9)
            kwargs = dict(inputs, max_new_tokens=new + K - 1, stopping_criteria=[_Tap(cancel, streamer)],
                          **sampling)
            if context.shape[-1]:
                kwargs["decoder_input_ids"] = context.to(self.device)
            failure: list[BaseException] = []
            returned: list[torch.Tensor] = []

            def work():
                try:
                    with torch.inference_mode():
                        returned.append(self.model.generate(**kwargs))
                except BaseException as exc:  # noqa: BLE001 - re-raised on the run thread
                    failure.append(exc)
                finally:
                    streamer.end()

            thread = threading.Thread(target=work, name="musicgen-generate", daemon=True)
            thread.start()
            base = codes.shape[-1] - context.shape[-1]  # absolute frame of this chunk's frame 0
            try:
                while True:
                    with streamer.cond:
                        streamer.cond.wait(0.5)
                        finished = streamer.done
                    sequence = streamer.sequence()
                    frames = undelay(sequence, K)
                    complete = min(frames.shape[-1], context.shape[-1] + new)
                    absolute = base + complete
                    step = made + max(0, complete - context.shape[-1])
                    if complete > context.shape[-1]:
                        yield Progress(step, total_new, f"{step / fr:.1f} s of {total_new / fr:.1f} s")
                    first = emitted == given
                    # Allowed when everything decoded so far plus this decode (predicted from the
                    # cost per frame seen so far) stays within the budget of the time spent.
                    predicted = decode_seconds + per_frame * (absolute - emitted + CONTEXT_FRAMES)
                    due = first or predicted <= PREVIEW_BUDGET * (time.perf_counter() - generation_started)
                    wanted = max(1, preview_every // 2) if first else preview_every
                    if preview_every and due and not finished and absolute - emitted >= wanted:
                        window = torch.cat([codes, frames[:, context.shape[-1]:complete]], dim=-1)
                        start = max(0, emitted - CONTEXT_FRAMES)
                        decode_started = time.perf_counter()
                        audio = self.decode(window[:, start:absolute])
                        spent = time.perf_counter() - decode_started
                        decode_seconds += spent
                        per_frame = spent / max(1, absolute - start)
                        hop = audio.shape[0] / max(1, absolute - start)
                        yield Preview(step=step, audio=audio[int(round((emitted - start) * hop)):],
                                      sample_rate=self.sample_rate)
                        emitted = absolute
                    if finished:
                        break
            finally:
                if thread.is_alive():
                    cancel.cancel() if not cancel.is_set else None
                thread.join()
            if failure:
                raise failure[0]
            frames = undelay(streamer.sequence(), K)
            produced = frames[:, context.shape[-1]:context.shape[-1] + new]
            codes = torch.cat([codes, produced], dim=-1)
            made += produced.shape[-1]
            if cancel.is_set:
                if not cancel.keep_partial:
                    raise Cancelled()
                interrupted = True
                break
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
