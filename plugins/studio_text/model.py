"""Loading a causal LM and streaming generation from it (imports torch and transformers)."""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer
from transformers.utils import logging as hf_logging

from studio.plugin_api import (
    Artifact,
    Cancelled,
    CancelToken,
    Event,
    Kind,
    LoadOptions,
    Log,
    ParamError,
    Partial,
    Progress,
    Result,
)
from studio.plugin_kit.devices import dtype_named, pick_device
from studio.plugin_kit.seeds import pick_seed
from studio.plugin_kit.streaming import ThreadStream

from .prompting import (
    FALLBACK_CHAT_TEMPLATE,
    FALLBACK_STOPS,
    IncrementalDecoder,
    StopHoldback,
    clean_messages,
    trim_turns,
)
from .sources import Source

log = logging.getLogger(__name__)

_DEFAULT_CONTEXT = 2048
#: shortest time between two streamed pieces (tokens made faster than this arrive together)
STREAM_INTERVAL = 0.02


def pick_dtype(requested: str, device: str) -> torch.dtype:
    requested = (requested or "auto").lower()
    if requested == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device == "mps" else torch.float32
    return dtype_named(requested)


def _offline_help(name: str) -> str:
    return (f"{name} is not in the local Hugging Face cache. Turn on 'allow download' in the load "
            f"options to fetch it, or choose a local model folder.")


# --------------------------------------------------------------------------- streaming helpers


class _IdStreamer(BaseStreamer):
    """Receives token ids from ``generate`` (on its thread) and emits them; skips the prompt."""

    def __init__(self, emit: Callable[[list[int]], None]):
        self.emit = emit
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.emit(value.reshape(-1).tolist())

    def end(self) -> None:
        pass


class _StopWhen(StoppingCriteria):
    """Ends generation after the current token once ``flag()`` is true (Stop, stop strings)."""

    def __init__(self, flag: Callable[[], bool]):
        self.flag = flag

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), bool(self.flag()), dtype=torch.bool, device=input_ids.device)


# --------------------------------------------------------------------------- the model


class TextModel:
    def __init__(self, source: str, model: Any, tokenizer: Any, device: str, notes: list[str]):
        self.source = source
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.notes = notes
        self.memory_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) + \
            sum(b.numel() * b.element_size() for b in model.buffers())
        self.context_length = self._context_length()
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.defaults = {"max_new_tokens": min(512, max(16, self.context_length // 4))}
        self.choices: dict[str, Any] = {}
        self.modes = ("chat", "notebook")  # chat works without a chat template too (a plain fallback)

    @classmethod
    def load(cls, source: str, resolved: Source, options: LoadOptions,
             progress: Callable[[str], None]) -> TextModel:
        hf_logging.disable_progress_bar()  # loading progress reaches the studio through ``progress``
        device = pick_device(options.device)
        dtype = pick_dtype(options.dtype, device)
        notes: list[str] = []
        if dtype is torch.float16 and device == "cpu":
            notes.append("float16 on the CPU is slow and may fail for some layers; float32 is recommended.")
        common = dict(trust_remote_code=bool(options.trust_remote_code),
                      local_files_only=(resolved.kind == "hub" and not options.allow_download))
        try:
            config = AutoConfig.from_pretrained(resolved.location, **common)
        except OSError as exc:
            if resolved.kind == "hub" and not options.allow_download:
                raise FileNotFoundError(_offline_help(resolved.location)) from exc
            raise
        except ValueError as exc:
            if "trust_remote_code" in str(exc):
                raise ValueError(f"{resolved.name} needs its own code to load; turn on 'trust remote code' in "
                                 f"the load options only if you trust where it came from.") from None
            raise
        architectures = list(getattr(config, "architectures", None) or [])
        if architectures and not any(("CausalLM" in a or "LMHead" in a or "ForConditionalGeneration" in a)
                                     for a in architectures):
            raise ValueError(f"{resolved.name} is not a causal language model ({', '.join(architectures)}); "
                             f"the Text panel needs one.")
        progress("Loading the tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, **common)
        progress(f"Loading the weights ({dtype})".replace("torch.", ""))
        try:
            model = AutoModelForCausalLM.from_pretrained(
                resolved.location, config=config, dtype=dtype,
                use_safetensors=None if options.allow_pickle else True, **common)
        except ValueError as exc:
            if "Unrecognized configuration class" in str(exc) or "AutoModelForCausalLM" in str(exc):
                raise ValueError(f"{resolved.name} is not a causal language model "
                                 f"({type(config).__name__}); the Text panel needs one.") from None
            raise
        if device != "cpu":
            progress(f"Moving the model to {device}")
        model.to(device)
        model.eval()
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(source, model, tokenizer, str(next(model.parameters()).device), notes)

    def _context_length(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", 0)
        return limit if isinstance(limit, int) and 0 < limit < 10**7 else _DEFAULT_CONTEXT

    # -- prompts -------------------------------------------------------------------------------
    def render_chat(self, messages: list[dict[str, str]], continue_last: bool) -> str:
        template = None if self.has_chat_template else FALLBACK_CHAT_TEMPLATE
        if continue_last and (not messages or messages[-1]["role"] != "assistant"):
            continue_last = False
        return self.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                  add_generation_prompt=not continue_last,
                                                  continue_final_message=continue_last)

    def encode(self, text: str, chat: bool) -> list[int]:
        # A chat template writes its own special tokens (BOS ...); a raw document gets the usual ones.
        return self.tokenizer(text, add_special_tokens=not chat)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def build_prompt(self, request: Mapping[str, Any], max_new: int) -> tuple[list[int], dict[str, Any]]:
        """The prompt's token ids, trimmed to fit the context, and what was trimmed."""
        budget = max(1, self.context_length - max_new)
        notice: dict[str, Any] = {}
        if request.get("mode", "chat") == "chat":
            messages = clean_messages(request.get("messages") or [])
            system = (request.get("system") or "").strip()
            if system:
                messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
            if not messages:
                raise ValueError("Write a message first.")
            cont = bool(request.get("continue_last"))
            trimmed = trim_turns(messages, lambda ms: len(self.encode(self.render_chat(ms, cont), True)), budget)
            if trimmed.dropped:
                notice["dropped_messages"] = trimmed.dropped
            ids = self.encode(self.render_chat(trimmed.messages, cont), True)
        else:
            ids = self.encode(request.get("prompt") or "", False)
        if len(ids) > budget:
            notice["dropped_tokens"] = len(ids) - budget
            ids = ids[-budget:]
        if not ids:
            start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else \
                self.tokenizer.eos_token_id
            ids = [start if start is not None else 0]
        return ids, notice

    def _generation_config(self, request: Mapping[str, Any], max_new: int) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        temperature = float(request.get("temperature", 0.8))
        sample = temperature > 0
        min_new = max_new if request.get("ignore_eos") else None  # masks the end-of-text token
        config.update(max_new_tokens=max_new, min_new_tokens=min_new, max_length=None, do_sample=sample,
                      num_beams=1, temperature=temperature if sample else 1.0,
                      top_k=int(request.get("top_k", 0)) if sample else None,
                      top_p=float(request.get("top_p", 1.0)) if sample else None,
                      min_p=(float(request.get("min_p", 0.0)) or None) if sample else None,
                      repetition_penalty=float(request.get("repetition_penalty", 1.0)))
        eos = config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
        for token in (self.tokenizer.eos_token_id,):
            if token is not None and token not in eos:
                eos.append(token)
        config.eos_token_id = eos or None
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else \
                (eos[0] if eos else None)
        return config, eos

    # -- running -------------------------------------------------------------------------------
    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        started = time.perf_counter()
        for note in self.notes:
            yield Log(note, "warning")
        self.notes = []
        mode = request.get("mode") or "chat"
        max_new = int(request.get("max_new_tokens", 200))
        if max_new >= self.context_length:
            max_new = max(1, self.context_length // 2)
            yield Log(f"Max new tokens lowered to {max_new}: the model's context is {self.context_length} tokens.",
                      "warning")
        try:
            prompt_ids, notice = self.build_prompt(request, max_new)
        except ValueError as exc:
            raise ParamError(str(exc)) from None
        if notice:
            parts = []
            if notice.get("dropped_messages"):
                parts.append(f"the {notice['dropped_messages']} oldest message(s)")
            if notice.get("dropped_tokens"):
                parts.append(f"the first {notice['dropped_tokens']} token(s)")
            notice["message"] = (f"The prompt was longer than the model's context ({self.context_length} tokens); "
                                 f"{' and '.join(parts)} were left out.")
            yield Log(notice["message"], "warning")
        seed = pick_seed(request.get("seed"))  # a fresh random 32-bit seed when none is given
        stops = list(request.get("stop") or ())
        if mode == "chat" and not self.has_chat_template:
            stops += [s for s in FALLBACK_STOPS if s not in stops]
        config, eos = self._generation_config(request, max_new)

        stream: ThreadStream[list[int]] = ThreadStream("studio-text-generate")
        stop_hit = threading.Event()
        holdback = StopHoldback(stops)
        decoder = IncrementalDecoder(self.tokenizer)
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.model.device)
        kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config,
                      streamer=_IdStreamer(stream.emit),
                      stopping_criteria=StoppingCriteriaList([_StopWhen(
                          lambda: cancel.is_set or stop_hit.is_set() or stream.consumer_gone)]))

        cpu: dict[str, float] = {}

        def work() -> None:
            torch.manual_seed(seed)
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(seed)
            cpu_start = time.thread_time()
            with torch.inference_mode():
                self.model.generate(**kwargs)
            cpu["generate"] = time.thread_time() - cpu_start

        gen_start = time.perf_counter()
        stream.start(work)
        text_parts: list[str] = []
        n_tokens = 0
        first_at: float | None = None
        last_id: int | None = None
        stream_cpu = time.thread_time()
        last_progress = 0.0
        unreported = 0  # tokens not yet counted in a Partial (held back, or not a whole character yet)
        try:
            # Fast models: hand over at most one batch per STREAM_INTERVAL, so this thread is
            # not woken (and the GIL not taken from generate) for every single token.  The
            # wait ends at once when generation finishes; slow models are not delayed at all.
            for batch in stream.batches(min_interval=STREAM_INTERVAL):
                new_ids = [token for ids in batch for token in ids]  # one Partial per wake-up
                if not new_ids:
                    continue
                if first_at is None:
                    first_at = time.perf_counter()
                if stop_hit.is_set():
                    continue  # tokens generated after a stop string are not kept
                n_tokens += len(new_ids)
                unreported += len(new_ids)
                last_id = new_ids[-1]
                piece = holdback.feed(decoder.push(new_ids))
                if holdback.hit is not None:
                    stop_hit.set()
                if piece:
                    text_parts.append(piece)
                    yield Partial(piece, tokens=unreported)
                    unreported = 0
                now = time.perf_counter()
                if now - last_progress >= 0.1:  # the text itself is the progress; ticks stay cheap
                    last_progress = now
                    yield Progress(n_tokens, max_new)
        finally:
            stream_cpu = time.thread_time() - stream_cpu  # this thread's work, listeners included
            stream.close()
        tail = holdback.feed(decoder.finish()) if holdback.hit is None else ""
        if holdback.hit is None:
            tail += holdback.flush()
        if tail or unreported:
            text_parts.append(tail)
            yield Partial(tail, tokens=unreported)
        yield Progress(n_tokens, max_new)
        ended = time.perf_counter()
        if cancel.is_set and not cancel.keep_partial:
            raise Cancelled()
        interrupted = cancel.is_set
        if interrupted:
            reason = "stopped"
        elif holdback.hit is not None:
            reason = "stop string"
        elif last_id is not None and last_id in eos:
            reason = "end of text"
        elif n_tokens >= max_new:
            reason = "max tokens"
        else:
            reason = "end of text"
        text = "".join(text_parts)
        gen_time = ended - gen_start
        info = {"tokens": n_tokens, "prompt_tokens": len(prompt_ids), "context_length": self.context_length,
                "seconds": round(ended - started, 4),
                "tokens_per_second": round(n_tokens / gen_time, 2) if gen_time > 0 and n_tokens else 0.0,
                "time_to_first_token": round(first_at - started, 4) if first_at is not None else None,
                "stop_reason": reason, "seed": seed, "trimmed": notice.get("message", ""),
                "continued": bool(request.get("continue_last")) if mode == "chat" else False,
                # CPU seconds: generate() on its thread; streaming (decode, events, listeners) on this one
                "generate_cpu_seconds": round(cpu.get("generate", 0.0), 4),
                "stream_cpu_seconds": round(stream_cpu, 4)}
        parameters = {k: v for k, v in request.items() if k not in ("messages",)}
        parameters.update(seed=seed, stop_reason=reason, tokens=n_tokens)
        if mode == "chat":
            last_user = next((m.get("content", "") for m in reversed(list(request.get("messages") or []))
                              if isinstance(m, dict) and m.get("role") == "user"), "")
            parameters["prompt"] = last_user
        yield Result((Artifact(Kind.TEXT, text=text, seed=seed, parameters=parameters),),
                     interrupted=interrupted, info=info)

    def unload(self) -> None:
        self.model = None
        self.tokenizer = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
