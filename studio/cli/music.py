"""`studio music PROMPT ...`: the chorale model or MusicGen, saved as WAV (+ MIDI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    ProgressBar,
    UsageError,
    looks_like_path,
    wait,
)
from studio.plugin_kit.sources import looks_like_hub_id


def add_parser(sub: Any) -> None:
    music = sub.add_parser("music", help="generate music from a prompt (chorale model or MusicGen)")
    music.add_argument("prompt")
    music.add_argument("--model", help="chorale model folder, MusicGen folder or hub id (default: embedded chorale)")
    music.add_argument("--plugin", default=None, help="music plugin id: chorale | musicgen (default: from --model)")
    music.add_argument("--seconds", type=float, help="length of the new music in seconds")
    music.add_argument("--seed", type=int, default=-1, help="-1 = random")
    music.add_argument("--temperature", type=float)
    music.add_argument("--top-k", type=int, help="MusicGen only")
    music.add_argument("--cfg", type=float, help="classifier-free guidance, MusicGen only")
    music.add_argument("--continue", dest="continue_from", metavar="FILE",
                       help="continue this clip: a MIDI file (chorale) or a WAV file (MusicGen)")
    music.add_argument("--out", metavar="FILE.wav|FOLDER", help="write the WAV exactly here (a .wav name), or "
                       "into this output folder")
    music.add_argument("--midi", metavar="FILE.mid", help="also write the MIDI here (symbolic models)")
    music.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    music.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def _music_plugin_for(model: str | None) -> str:
    """chorale unless the model is a MusicGen folder or a hub id."""
    if not model:
        return "chorale"
    path = Path(model).expanduser()
    config = path / "config.json" if path.is_dir() else None
    if config is not None and config.is_file():
        import json

        try:
            kind = json.loads(config.read_text(encoding="utf-8")).get("model_type", "")
        except (OSError, ValueError):
            kind = ""
        return "musicgen" if "musicgen" in str(kind) else "chorale"
    if looks_like_hub_id(model):
        return "musicgen"  # a hub id
    return "chorale"


def run(args: argparse.Namespace) -> int:
    from studio.core.atomic import publish_new
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, Log, ParamError, Progress, validate_request

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
    plugin_id = args.plugin or _music_plugin_for(args.model)
    from studio.core.out_paths import plan_out

    out = plan_out(args.out, 1, (".wav",)) if args.out else None  # before any generation
    midi_out = plan_out(args.midi, 1, (".mid", ".midi"), "--midi", folder_allowed=False) if args.midi else None
    beside = out.files[0].with_suffix(".mid") if out is not None and out.files else None
    same = midi_out is not None and midi_out.files[0] == beside
    if beside is not None and plugin_id == "chorale" and beside.exists() and not same:
        raise UsageError(f"--out: {beside} (the clip's MIDI, kept beside the WAV) already exists and is never "
                         "replaced; choose another name")
    settings = Settings.load()
    if out is not None and out.folder is not None:
        settings.output_dir = str(out.folder)
    if args.allow_download:
        settings.allow_download = True
    if args.device:
        settings.device = args.device
    context = StudioContext.create(settings)
    try:
        try:
            plugin = context.registry.get(plugin_id)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        if plugin.kind is not Kind.MUSIC:
            raise UsageError(f"plugin {plugin_id} does not make music")
        names = {p.name for p in plugin.parameters()}
        request = {"prompt": args.prompt, "seed": args.seed}
        ignored = []
        for flag, key, value in (("--seconds", "seconds", args.seconds), ("--temperature", "temperature",
                                 args.temperature), ("--top-k", "top_k", args.top_k), ("--cfg", "guidance", args.cfg),
                                 ("--continue", "continue_from", args.continue_from)):
            if value is None:
                continue
            if key in names:
                request[key] = value
            else:
                ignored.append(flag)
        if ignored:
            print(f"studio: note: {', '.join(ignored)} do not apply to {plugin_id}; ignored", file=sys.stderr)
        if args.midi and plugin_id != "chorale":
            raise UsageError("--midi needs a symbolic model (the chorale plugin); MusicGen makes audio only")
        if "preview_seconds" in names:
            request["preview_seconds"] = 0.0  # nobody hears previews on a terminal
        try:
            validate_request(plugin.parameters(), request)
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        model = args.model or next((m.source for m in plugin.models()), "")
        if not model:
            raise UsageError("no model given and no embedded default found; pass --model")
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, request=request,
                                                options=context.load_options(),
                                                targets=tuple(str(f) for f in out.files) if out else ()))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = ProgressBar()

        def show(j, event):
            if j is not job:
                return
            if isinstance(event, Progress):
                bar.update(event)
            elif isinstance(event, Log) and event.level == "warning":
                print(f"studio: note: {event.message}", file=sys.stderr)

        context.engine.subscribe(show)
        try:
            ok = wait(context, job)
        finally:
            bar.close()
        if not ok:
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
