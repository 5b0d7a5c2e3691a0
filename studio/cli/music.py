"""`studio music PROMPT ...`: any music plugin (the embedded chorale model, MusicGen), saved as WAV
(+ MIDI from symbolic models), through the Music panel's session."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    ProgressBar,
    UsageError,
    looks_like_path,
    settings_for,
    wait,
)
from studio.plugin_kit.sources import looks_like_hub_id


def add_parser(sub: Any) -> None:
    music = sub.add_parser("music", help="generate music from a prompt (chorale model or MusicGen)")
    music.add_argument("prompt")
    music.add_argument("--model", help="chorale model folder, MusicGen folder or hub id (default: embedded chorale)")
    music.add_argument("--plugin", default=None, help="music plugin id, see `studio plugins` (default: from --model)")
    music.add_argument("--seconds", type=float, help="length of the new music in seconds")
    music.add_argument("--seed", type=int, default=-1, help="-1 = random")
    music.add_argument("--temperature", type=float)
    music.add_argument("--top-k", type=int, help="MusicGen only")
    music.add_argument("--cfg", type=float, help="classifier-free guidance, MusicGen only")
    music.add_argument("--continue", dest="continue_from", metavar="FILE",
                       help="continue this clip: a MIDI file (chorale) or a WAV file (MusicGen)")
    music.add_argument("--out", metavar="FILE.wav", help="also write the WAV here")
    music.add_argument("--midi", metavar="FILE.mid", help="also write the MIDI here (symbolic models)")
    music.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    music.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def choose_plugin(context: Any, model: str | None, wanted: str | None) -> Any:
    """The music plugin for ``--plugin`` / ``--model``, by what plugins declare, never by id:

    * ``--plugin`` names it;
    * no model: the plugin whose default model is on disk, symbolic first (the Music panel's
      default: it works without downloads);
    * a model a plugin offers in its model list: that plugin;
    * a hub id, or a folder in the transformers layout (``config.json`` naming a
      ``model_type``): an audio-language plugin (one that does not write MIDI);
    * anything else: a symbolic plugin (``ContinuesMidi``), whose own folders are not
      transformers folders."""
    from studio.core.sessions.music import MusicSession
    from studio.plugin_api import ContinuesMidi, Kind

    if wanted:
        try:
            plugin = context.registry.get(wanted)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        if plugin.kind is not Kind.MUSIC:
            raise UsageError(f"plugin {wanted} does not make music")
        return plugin
    plugins = MusicSession.ordered_plugins(context)
    if not plugins:
        failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
        raise UsageError("no music plugin is available" + (f" ({failures})" if failures else ""))
    if not model:
        return plugins[0]
    for plugin in plugins:
        if model in {choice.source for choice in plugin.models()}:
            return plugin
    audio = looks_like_hub_id(model) or _is_transformers_folder(Path(model).expanduser())
    for plugin in plugins:
        if isinstance(plugin, ContinuesMidi) != audio:
            return plugin
    return plugins[0]


def _is_transformers_folder(path: Path) -> bool:
    config = path / "config.json" if path.is_dir() else None
    if config is None or not config.is_file():
        return False
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("model_type"))
    except (OSError, ValueError, AttributeError):
        return False


def run(args: argparse.Namespace) -> int:
    """Generate through the Music panel's own session (one request-building path), fed on this
    thread; the clip is saved where ``--out`` says (never replacing a file), the MIDI of a
    symbolic model beside it or at ``--midi``."""
    from studio.core.atomic import publish_new
    from studio.core.context import StudioContext
    from studio.core.out_paths import plan_out
    from studio.core.playback import Player
    from studio.core.sessions.inbox import EventInbox
    from studio.core.sessions.music import MusicSession
    from studio.plugin_api import ContinuesMidi, ParamError, validate_request

    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds must be more than 0 (got {args.seconds:g})")
    if args.continue_from is not None:
        clip = Path(args.continue_from)
        try:
            with clip.open("rb") as handle:
                head = handle.read(12)
        except OSError as exc:
            raise UsageError(f"cannot read clip {clip}: {exc.strerror or exc}") from None
        if not (head.startswith(b"MThd") or (head.startswith(b"RIFF") and head[8:12] == b"WAVE")):
            raise UsageError(f"cannot read clip {clip}: not a MIDI or WAV file")
    if args.model and looks_like_path(args.model) and not Path(args.model).expanduser().exists():
        raise UsageError(f"model not found: {args.model}")
    out = plan_out(args.out, 1, (".wav",)) if args.out else None  # before any generation
    midi_out = plan_out(args.midi, 1, (".mid", ".midi"), "--midi", folder_allowed=False) if args.midi else None
    context = StudioContext.create(settings_for(args, out))
    try:
        plugin = choose_plugin(context, args.model, args.plugin)
        symbolic = isinstance(plugin, ContinuesMidi)
        if args.midi and not symbolic:
            raise UsageError(f"--midi needs a symbolic model (one that writes MIDI); {plugin.label} makes audio only")
        beside = out.files[0].with_suffix(".mid") if out is not None and out.files else None
        same = midi_out is not None and midi_out.files[0] == beside
        if beside is not None and symbolic and beside.exists() and not same:
            raise UsageError(f"--out: {beside} (the clip's MIDI, kept beside the WAV) already exists and is never "
                             "replaced; choose another name")
        # Nobody listens on a terminal: the session's player is never started.
        session = MusicSession(context, plugin.id, player=Player(_no_sound_card), autoplay=False)
        session.set_prompt(args.prompt)
        values: dict[str, Any] = {"seed": args.seed}
        ignored = []
        for flag, key, value in (("--seconds", "seconds", args.seconds), ("--temperature", "temperature",
                                 args.temperature), ("--top-k", "top_k", args.top_k), ("--cfg", "guidance", args.cfg),
                                 ("--continue", "continue_from", args.continue_from)):
            if value is None:
                continue
            if key in session.values:
                values[key] = value
            else:
                ignored.append(flag)
        if ignored:
            print(f"studio: note: {', '.join(ignored)} do not apply to {plugin.id}; ignored", file=sys.stderr)
        if "preview_seconds" in session.values:
            values["preview_seconds"] = 0.0  # nobody hears previews on a terminal
        session.set_values(values)
        try:
            validate_request(plugin.parameters(), session.request_values(), session.mode)
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        if args.model:
            session.set_model(args.model)
        if not session.model:
            raise UsageError("no model given and no embedded default found; pass --model")
        bar = ProgressBar()
        session.changed.connect(lambda what: bar.update(session.clock) if what == "progress" else None)
        session.message.connect(_note)
        inbox = EventInbox(context.engine, session)
        try:
            job = session.generate(targets=tuple(str(f) for f in out.files) if out else ())
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        try:
            while not inbox.run_until(job, 0.2):
                pass
        except KeyboardInterrupt:
            session.cancel()
            inbox.run_until(job, 30)
            raise
        finally:
            inbox.close()
            bar.close()
        if not wait(context, job):  # already finished: this turns a failure into exit 1 / 2
            return EXIT_FAILED
        for path in job.saved:
            print(path)
        artifact = job.result.artifacts[0] if job.result and job.result.artifacts else None
        if artifact is not None and midi_out is not None:
            if artifact.midi:
                if midi_out.files[0] not in [p.with_suffix(".mid") for p in job.saved]:  # written beside
                    publish_new(midi_out.files[0], artifact.midi)  # never replaces a file
                print(midi_out.files[0])
            else:
                print("studio: note: this clip has no MIDI", file=sys.stderr)
        return EXIT_OK
    finally:
        context.close()


def _no_sound_card(samplerate: int, channels: int, blocksize: int, callback: Any) -> Any:
    raise RuntimeError("the command line does not play sound")


def _note(level: str, text: str) -> None:
    """Warnings go to stderr; failures are wait()'s to report (one line, the right exit status)."""
    if level == "warning":
        print(f"studio: note: {text}", file=sys.stderr)
