"""Command line on the same engine as the GUI: ``studio image|text|plugins ...``.

Exit status: 0 success, 1 the run failed, 2 bad input (one line on stderr, no traceback),
130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

from studio.core.progress import ProgressClock

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit itself; we want one line and status 2
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="Studio: local generative models, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    image = sub.add_parser("image", help="generate images from a prompt")
    image.add_argument("prompt")
    image.add_argument("--negative", default="", help="negative prompt")
    image.add_argument("--model", help="diffusers folder, .safetensors file or hub id (default: embedded)")
    image.add_argument("--seed", type=int, default=-1, help="-1 = random")
    image.add_argument("--steps", type=int)
    image.add_argument("--cfg", type=float)
    image.add_argument("--size", help="WIDTHxHEIGHT")
    image.add_argument("--batch", type=int, default=1)
    image.add_argument("--scheduler", help="sampler name, e.g. 'Euler a', 'DPM++ 2M'")
    image.add_argument("--init-image", help="img2img / inpaint source image")
    image.add_argument("--strength", type=float)
    image.add_argument("--mask", help="inpaint mask (white = repaint)")
    image.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]")
    image.add_argument("--out", help="output folder (default: the studio's output folder)")
    image.add_argument("--plugin", default=None, help="image plugin id (default: the first one)")
    image.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    image.add_argument("--allow-pickle", action="store_true", help="allow loading pickle checkpoints (unsafe)")
    image.add_argument("--device", default=None, help="auto | cpu | cuda | mps")

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
    music.add_argument("--out", metavar="FILE.wav", help="also write the WAV here")
    music.add_argument("--midi", metavar="FILE.mid", help="also write the MIDI here (symbolic models)")
    music.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    music.add_argument("--device", default=None, help="auto | cpu | cuda | mps")

    sub.add_parser("plugins", help="list plugins with their kind and status")
    _add_latent_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = _build_parser().parse_args(list(argv) if argv is not None else None)
    except UsageError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.command == "plugins":
            return _plugins()
        if args.command == "latent":
            return _latent(args)
        if args.command == "image":
            return _image(args)
        if args.command == "music":
            return _music(args)
        if args.command == "text":
            return _text(args)
    except UsageError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT


def _plugins() -> int:
    from studio.core.registry import Registry

    registry = Registry.discover()
    if not registry.entries:
        print("no plugins installed")
    for entry in registry.entries:
        kind = entry.kind.value if entry.kind else "?"
        label = entry.plugin.label if entry.plugin else entry.target
        print(f"{entry.name:<20} {kind:<7} {entry.status:<8}  {label}")
    return EXIT_OK


def _parse_loras(values: list[str]) -> list[dict]:
    loras = []
    for value in values:
        path, weight = value, 1.0
        head, sep, tail = value.rpartition(":")
        if sep and head and _is_number(tail):
            path, weight = head, float(tail)
        if not Path(path).is_file():
            raise UsageError(f"LoRA file not found: {path}")
        loras.append({"path": path, "weight": weight})
    return loras


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_image(path: str | None, what: str) -> None:
    if path is None:
        return
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, SyntaxError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def _wait(context, job, keep_partial_on_ctrl_c: bool = False) -> bool:
    """Wait for ``job``; True when it produced its result (done or interrupted).

    Ctrl-C stops the job (keeping what it made when ``keep_partial_on_ctrl_c``) and re-raises.
    A failure while validating or loading is the user's input to fix: UsageError (exit 2).
    Any other failure is printed as one line and False is returned (exit 1).
    """
    from studio.core.jobs import JobState

    try:
        while not job.wait(0.2):
            pass
    except KeyboardInterrupt:
        (context.engine.interrupt if keep_partial_on_ctrl_c else context.engine.cancel)(job.id)
        job.wait(30)
        raise
    if job.state is JobState.FAILED:
        message = job.failure.message if job.failure else job.message
        if job.failure and job.failure.stage in ("validate", "load"):
            raise UsageError(message)
        print(f"studio: {message}", file=sys.stderr)
        return False
    return job.state in (JobState.DONE, JobState.INTERRUPTED)


def _checked_request_and_model(plugin, request: dict, mode: str | None, given: str | None) -> str:
    """Validate ``request`` first (bad values are the user's to fix whatever the model), then
    resolve the model: the one given, else the plugin's built-in default."""
    from studio.plugin_api import ParamError, validate_request

    try:
        validate_request(plugin.parameters(), request, mode)
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    model = given or next((m.source for m in plugin.models()), "")
    if not model:
        raise UsageError("no model given and no embedded default found; pass --model")
    if given and _looks_like_path(given) and not Path(given).exists():
        raise UsageError(f"model not found: {given}")
    return model


def _image(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Progress

    settings = Settings.load()
    if args.out:
        settings.output_dir = args.out
    if args.allow_download:
        settings.allow_download = True
    if args.allow_pickle:
        settings.allow_pickle = True
    if args.device:
        settings.device = args.device
    _check_image(args.init_image, "init image")
    _check_image(args.mask, "mask")
    mode = "inpaint" if args.mask else "img2img" if args.init_image else "txt2img"
    if args.mask and not args.init_image:
        raise UsageError("--mask needs --init-image")

    context = StudioContext.create(settings)
    try:
        plugins = context.registry.plugins(Kind.IMAGE)
        if not plugins:
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no image plugin is available" + (f" ({failures})" if failures else ""))
        plugin = context.registry.get(args.plugin) if args.plugin else plugins[0]
        request = {"prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed,
                   "batch_count": args.batch}
        for key, value in (("steps", args.steps), ("cfg_scale", args.cfg), ("size", args.size),
                           ("scheduler", args.scheduler), ("init_image", args.init_image),
                           ("strength", args.strength), ("mask_image", args.mask)):
            if value is not None:
                request[key] = value
        if args.lora:
            request["loras"] = _parse_loras(args.lora)
        request["preview_every"] = 0  # nobody sees previews on a terminal
        names = {p.name for p in plugin.parameters()}
        request = {k: v for k, v in request.items() if k in names}
        model = _checked_request_and_model(plugin, request, mode, args.model)
        # Values the user did not give come from the model where it says what suits it
        # (the built-in shapes model draws 64x64, not the plugin-wide 512x512).
        given = {"size": args.size, "steps": args.steps, "cfg_scale": args.cfg}
        for key, value in next((dict(m.defaults) for m in plugin.models() if m.source == model), {}).items():
            if key in names and given.get(key) is None:
                request[key] = value
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, mode=mode, request=request,
                                                options=context.load_options()))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = _ProgressBar()
        context.engine.subscribe(lambda j, e: bar.update(e) if j is job and isinstance(e, Progress) else None)
        try:
            ok = _wait(context, job)
        finally:
            bar.close()
        for path in job.saved:
            print(path)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        context.close()


def _text(args: argparse.Namespace) -> int:
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
        model = _checked_request_and_model(plugin, request, mode, args.model)
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
        if not _wait(context, job, keep_partial_on_ctrl_c=True):  # Ctrl-C keeps what was written
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
    if not path.exists() and model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return "musicgen"  # a hub id
    return "chorale"


def _music(args: argparse.Namespace) -> int:
    from studio.core.atomic import write_bytes_atomic
    from studio.core.audio_files import wav_bytes
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
    if args.model and _looks_like_path(args.model) and not Path(args.model).expanduser().exists():
        raise UsageError(f"model not found: {args.model}")
    plugin_id = args.plugin or _music_plugin_for(args.model)
    # A failed load is reported as one line below; keep the engine's traceback off the terminal.
    logging.getLogger("studio.core.jobs").setLevel(logging.CRITICAL)
    settings = Settings.load()
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
                                                options=context.load_options()))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = _ProgressBar()

        def show(j, event):
            if j is not job:
                return
            if isinstance(event, Progress):
                bar.update(event)
            elif isinstance(event, Log) and event.level == "warning":
                print(f"studio: note: {event.message}", file=sys.stderr)

        context.engine.subscribe(show)
        try:
            ok = _wait(context, job)
        finally:
            bar.close()
        if not ok:
            return EXIT_FAILED
        for path in job.saved:
            print(path)
        artifact = job.result.artifacts[0] if job.result and job.result.artifacts else None
        if artifact is not None and args.out:
            out = Path(args.out)
            write_bytes_atomic(out, wav_bytes(artifact.audio, artifact.sample_rate, artifact.parameters))
            print(out)
        if artifact is not None and args.midi:
            if artifact.midi:
                write_bytes_atomic(Path(args.midi), artifact.midi)
                print(args.midi)
            else:
                print("studio: note: this clip has no MIDI", file=sys.stderr)
        return EXIT_OK
    finally:
        context.close()


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.endswith((".safetensors", ".ckpt")) or Path(text).exists() \
        or text.count("/") != 1


class _ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, else plain lines)."""

    def __init__(self) -> None:
        self.clock = ProgressClock()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def update(self, event) -> None:
        self.clock.update(event.step, event.total)
        now = time.monotonic()
        if self.tty:
            width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 40))
            filled = int(width * event.step / event.total) if event.total else 0
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.clock.describe()}   ")
            sys.stderr.flush()
        elif now - self.last_print > 1.0 or event.step == event.total:
            print(f"step {self.clock.describe()}", file=sys.stderr)
            self.last_print = now

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


# --------------------------------------------------------------------------- studio latent ...


def _add_latent_parser(sub) -> None:
    latent = sub.add_parser("latent", help="latent directions, walks and edits")
    lsub = latent.add_subparsers(dest="latent_command", required=True, parser_class=_Parser)

    def common(p) -> None:
        p.add_argument("--model", help="vector-VAE folder or diffusers pipeline (default: the built-in Shapes VAE)")
        p.add_argument("--plugin", default=None, help="latent plugin id (default: from the model folder)")
        p.add_argument("--directions", action="append", default=[], metavar="FILE",
                       help="extra directions file (.json / .safetensors); repeatable")
        p.add_argument("--device", default=None, help="auto | cpu | cuda | mps")

    d = lsub.add_parser("directions", help="list the model's named directions")
    common(d)
    w = lsub.add_parser("walk", help="walk from A to B and save a GIF / MP4 (or a folder of PNG frames)")
    common(w)
    w.add_argument("--from", dest="walk_from", help="A: an image (VAE) or a prompt (diffusion)")
    w.add_argument("--to", dest="walk_to", help="B: an image (VAE) or a prompt (diffusion)")
    w.add_argument("--seed-from", type=int, help="A's seed")
    w.add_argument("--seed-to", type=int, help="B's seed")
    w.add_argument("--frames", type=int, default=8)
    w.add_argument("--fps", type=float, default=8.0)
    w.add_argument("--steps", type=int, help="diffusion: denoising steps")
    w.add_argument("--cfg", type=float, help="diffusion: CFG scale")
    w.add_argument("--out", required=True, help="FILE.gif, FILE.mp4 or a folder for PNG frames")
    e = lsub.add_parser("edit", help="encode IMAGE, move it along a direction, save a PNG")
    common(e)
    e.add_argument("image")
    e.add_argument("--direction", required=True, help="a direction name (see 'studio latent directions'); "
                                                       "diffusion: also a prompt pair FROM->TO")
    e.add_argument("--amount", type=float, required=True, help="in the direction's units; 0 = the reconstruction")
    e.add_argument("--keep", action="append", default=[], metavar="NAME", help="keep this direction fixed")
    e.add_argument("--prompt", default="", help="diffusion: the image's prompt")
    e.add_argument("--steps", type=int, help="diffusion: denoising / inversion steps")
    e.add_argument("--out", required=True, help="FILE.png")


def _latent_plugin_for(args, registry):
    from studio.plugin_api import Kind

    plugins = {p.id: p for p in registry.plugins(Kind.LATENT)}
    if not plugins:
        failures = "; ".join(f"{e.name}: {e.error}" for e in registry.failures())
        raise UsageError("no latent plugin is available" + (f" ({failures})" if failures else ""))
    if args.plugin:
        if args.plugin not in plugins:
            raise UsageError(f"no latent plugin {args.plugin!r} (installed: {', '.join(plugins)})")
        plugin = plugins[args.plugin]
        model = args.model or next((m.source for m in plugin.models()), "")
    elif args.model:
        path = Path(args.model).expanduser()
        if not path.exists() and _looks_like_path(args.model):
            raise UsageError(f"model not found: {args.model}")
        is_vae = (path / "config.json").is_file() and (path / "model.safetensors").is_file() \
            and not (path / "model_index.json").is_file()
        plugin = plugins.get("latent-vae" if is_vae else "latent-diffusion") or next(iter(plugins.values()))
        model = args.model
    else:
        plugin = plugins.get("latent-vae") or next(iter(plugins.values()))
        model = next((m.source for m in plugin.models()), "")
    if not model:
        raise UsageError("no model given and the built-in Shapes VAE is not installed; pass --model")
    for f in args.directions:
        if not Path(f).is_file():
            raise UsageError(f"directions file not found: {f}")
    return plugin, model


def _latent_job(context, plugin, model, mode: str, request: dict):
    from studio.core.jobs import JobSpec
    from studio.plugin_api import ParamError, validate_request

    try:
        validate_request(plugin.parameters(), request, mode)
        job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, mode=mode, request=request,
                                            options=context.load_options(), save=False))
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    return job.result if _wait(context, job) else None


def _latent(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.settings import Settings

    if args.latent_command == "walk":
        suffix = Path(args.out).suffix.lower()
        if suffix not in (".gif", ".mp4", ""):
            raise UsageError(f"--out must end in .gif or .mp4, or name a folder for PNG frames (got {args.out})")
        if not 2 <= args.frames <= 240:
            raise UsageError(f"--frames must be between 2 and 240 (got {args.frames})")
    if args.latent_command == "edit":
        _check_image(args.image, "image")
        if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise UsageError(f"--out must be an image file such as FILE.png (got {args.out})")
    settings = Settings.load()
    if args.device:
        settings.device = args.device
    context = StudioContext.create(settings)
    try:
        plugin, model = _latent_plugin_for(args, context.registry)
        diffusion = "diffusion" in plugin.id
        files = [str(Path(f).resolve()) for f in args.directions]
        if args.latent_command == "directions":
            result = _latent_job(context, plugin, model, "info", {"direction_files": files})
            if result is None:
                return EXIT_FAILED
            entries = result.info.get("directions", [])
            for e in entries:
                lo, hi = e.get("range", (-3, 3))
                units = e.get("units", "")
                print(f"{e['name']:<22} {e.get('kind', ''):<11} [{lo:g}, {hi:g}] {units:<28} {e.get('label', '')}")
            if diffusion:
                print("(prompt pairs work too: --direction 'red->blue')")
            elif not entries:
                print("no directions")
            return EXIT_OK
        if args.latent_command == "walk":
            request: dict = {"frames": args.frames, "direction_files": files} if not diffusion else \
                {"frames": args.frames}
            if diffusion:
                if args.walk_from is None and args.seed_from is None:
                    raise UsageError("give --from PROMPT and/or --seed-from N")
                request.update(prompt=args.walk_from or "", prompt_to=args.walk_to or args.walk_from or "",
                               seed=args.seed_from if args.seed_from is not None else 0)
                if args.seed_to is not None:
                    request["seed_to"] = args.seed_to
                if args.steps is not None:
                    request["steps"] = args.steps
                if args.cfg is not None:
                    request["cfg_scale"] = args.cfg
            else:
                for side, image, seed in (("from", args.walk_from, args.seed_from), ("to", args.walk_to, args.seed_to)):
                    if image:
                        _check_image(image, f"--{side} image")
                        request[f"{side}_image"] = image
                    elif seed is not None:
                        request[f"{side}_seed"] = seed
                    else:
                        raise UsageError(f"give --{side} IMAGE or --seed-{side} N")
            result = _latent_job(context, plugin, model, "walk", request)
            if result is None:
                return EXIT_FAILED
            from studio.core.latent import media

            frames = [a.image for a in result.artifacts]
            try:
                paths = media.export(frames, args.out, args.fps)
            except (ValueError, RuntimeError, OSError) as exc:
                raise UsageError(str(exc)) from None
            s = result.info.get("smoothness", {})
            print(paths[0] if len(paths) == 1 else Path(args.out))
            print(f"{len(frames)} frames; largest step {s.get('max_step', 0):.2f} = {s.get('jump_ratio', 1):.2f}x "
                  f"the mean", file=sys.stderr)
            return EXIT_OK
        # edit
        request = {"image": str(Path(args.image).resolve()), "direction_files": files}
        if diffusion:
            request.update(prompt=args.prompt)
            if args.steps is not None:
                request["steps"] = args.steps
            if "->" in args.direction:
                a, b = (s.strip() for s in args.direction.split("->", 1))
                if not a or not b:
                    raise UsageError(f"a prompt pair looks like FROM->TO (got {args.direction!r})")
                request["pairs"] = [[a, b, args.amount]]
            else:
                request["edits"] = [[args.direction, args.amount]]
        else:
            request.update(edits=[[args.direction, args.amount]], keep=list(args.keep))
        if "edits" in request:  # unknown names: one line, before any encoding
            info = _latent_job(context, plugin, model, "info", {"direction_files": files})
            if info is None:
                return EXIT_FAILED
            known = [e["name"] for e in info.info.get("directions", [])]
            for name in [args.direction, *args.keep]:
                if name not in known:
                    shown = ", ".join(known[:24]) + (" ..." if len(known) > 24 else "")
                    raise UsageError(f"unknown direction {name!r}; this model has: {shown or 'none'}"
                                     + (" (or use a prompt pair FROM->TO)" if diffusion else ""))
        result = _latent_job(context, plugin, model, "edit", request)
        if result is None:
            return EXIT_FAILED
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.artifacts[0].image.save(out)
        print(out)
        return EXIT_OK
    finally:
        context.close()
