"""`studio text PROMPT ...`: stream generated text to stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    checked_request_and_model,
    wait,
)


def add_parser(sub: Any) -> None:
    text = sub.add_parser("text", help="generate text from a prompt, streamed to stdout")
    text.add_argument("prompt")
    text.add_argument("--model", help="transformers model folder or hub id (default: embedded)")
    text.add_argument("--chat", action="store_true", help="treat PROMPT as a chat message (chat template)")
    text.add_argument("--system", default="", help="system prompt (with --chat)")
    text.add_argument("--max-new-tokens", type=int)
    text.add_argument("--temperature", type=float)
    text.add_argument("--top-k", type=int)
    text.add_argument("--top-p", type=float)
    text.add_argument("--min-p", type=float)
    text.add_argument("--repetition-penalty", type=float)
    text.add_argument("--seed", type=int, default=-1, help="-1 = random")
    text.add_argument("--plugin", default=None, help="text plugin id (default: the first one)")
    text.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    text.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def run(args: argparse.Namespace) -> int:
    """Stream generated text to stdout; statistics go to stderr."""
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Partial

    if args.system and not args.chat:
        raise UsageError("--system needs --chat")
    settings = Settings.load()
    if args.allow_download:
        settings.allow_download = True
    if args.device:
        settings.device = args.device
    mode = "chat" if args.chat else "notebook"
    context = StudioContext.create(settings)
    try:
        plugins = context.registry.plugins(Kind.TEXT)
        if not plugins:
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no text plugin is available" + (f" ({failures})" if failures else ""))
        plugin = context.registry.get(args.plugin) if args.plugin else plugins[0]
        request: dict = {"seed": args.seed}
        if args.chat:
            request.update(messages=[{"role": "user", "content": args.prompt}], system=args.system)
        else:
            request["prompt"] = args.prompt
        for key in ("max_new_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty"):
            value = getattr(args, key)
            if value is not None:
                request[key] = value
        model = checked_request_and_model(plugin, request, mode, args.model)
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, mode=mode, request=request,
                                                options=context.load_options(), save=False))
        except ParamError as exc:
            raise UsageError(str(exc)) from None

        def on_event(j, event) -> None:
            if j is job and isinstance(event, Partial):
                sys.stdout.write(event.text)
                sys.stdout.flush()

        context.engine.subscribe(on_event)
        if not wait(context, job, keep_partial_on_ctrl_c=True):  # Ctrl-C keeps what was written
            return EXIT_FAILED
        sys.stdout.write("\n")
        sys.stdout.flush()
        info = dict(job.result.info) if job.result else {}
        ttft = info.get("time_to_first_token")
        print(f"tokens {info.get('tokens', 0)}  prompt {info.get('prompt_tokens', 0)}  "
              f"{info.get('tokens_per_second', 0):.1f} tok/s  first token "
              f"{(ttft if ttft is not None else 0):.3f} s  stop: {info.get('stop_reason', '?')}  "
              f"seed {info.get('seed')}", file=sys.stderr)
        if info.get("trimmed"):
            print(f"note: {info['trimmed']}", file=sys.stderr)
        return EXIT_OK
    finally:
        context.close()
