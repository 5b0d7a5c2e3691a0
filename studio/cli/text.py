"""`studio text PROMPT ...`: stream generated text to stdout, through the Text panel's session."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    checked_request_and_model,
    settings_for,
    wait,
)

SAMPLING_FLAGS = ("max_new_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty")


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
    text.add_argument("--plugin", default=None, help="text plugin id (default: the studio's own)")
    text.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    text.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def run(args: argparse.Namespace) -> int:
    """Stream generated text to stdout; statistics go to stderr.  The request is built by the
    Text panel's own session (the same request-building path as the GUI), fed on this thread."""
    from studio.core.context import StudioContext
    from studio.core.sessions.inbox import EventInbox
    from studio.core.sessions.text import TextSession
    from studio.plugin_api import Kind, ParamError

    if args.system and not args.chat:
        raise UsageError("--system needs --chat")
    settings = settings_for(args)
    mode = "chat" if args.chat else "notebook"
    context = StudioContext.create(settings)
    try:
        plugins = context.registry.plugins(Kind.TEXT)
        if not plugins:
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no text plugin is available" + (f" ({failures})" if failures else ""))
        if args.plugin:
            try:
                wanted = context.registry.get(args.plugin)
            except LookupError as exc:
                raise UsageError(str(exc)) from None
            if wanted.kind is not Kind.TEXT:
                raise UsageError(f"plugin {args.plugin} does not write text")
        session = TextSession(context, args.plugin, autosave=False)
        plugin = plugins[0] if session.plugin is None else session.plugin
        values = {key: getattr(args, key) for key in SAMPLING_FLAGS if getattr(args, key) is not None}
        values["seed"] = args.seed
        try:
            session.set_mode(mode)
            session.set_values({k: v for k, v in values.items() if k in session.values})
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        ignored = [f"--{k.replace('_', '-')}" for k in values if k not in session.values]
        if ignored:
            print(f"studio: note: {', '.join(ignored)} do not apply to {plugin.id}; ignored", file=sys.stderr)
        session.set_system(args.system)
        model = checked_request_and_model(plugin, session.request_values(), mode, args.model)
        session.set_model(model)
        session.streamed.connect(_write)
        session.message.connect(_note)
        inbox = EventInbox(context.engine, session)
        try:
            job = session.send(args.prompt) if args.chat else _continue(session, args.prompt)
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        try:
            while not inbox.run_until(job, 0.2):
                pass
        except KeyboardInterrupt:  # Ctrl-C keeps what was written
            session.stop()
            inbox.run_until(job, 30)
            raise
        finally:
            inbox.close()
        if not wait(context, job):  # already finished: this turns a failure into exit 1 / 2
            return EXIT_FAILED
        sys.stdout.write("\n")
        sys.stdout.flush()
        info = session.last_info
        ttft = info.get("time_to_first_token")
        print(f"tokens {info.get('tokens', 0)}  prompt {info.get('prompt_tokens', 0)}  "
              f"{info.get('tokens_per_second', 0):.1f} tok/s  first token "
              f"{(ttft if ttft is not None else 0):.3f} s  stop: {info.get('stop_reason', '?')}  "
              f"seed {info.get('seed')}", file=sys.stderr)
        return EXIT_OK
    finally:
        context.close()


def _continue(session: Any, document: str) -> Any:
    session.set_document(document)
    return session.send("")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _note(level: str, text: str) -> None:
    """Warnings (a trimmed prompt, a lowered limit) go to stderr; failures are wait()'s to report."""
    if level == "warning":
        print(f"studio: note: {text}", file=sys.stderr)
