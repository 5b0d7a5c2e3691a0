"""`studio latent directions|walk|edit`: named directions, walks and edits."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.cli import latent_extra as extra
from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    UsageError,
    check_image,
    looks_like_path,
    settings_for,
    wait,
)


def add_parser(sub: Any) -> None:
    latent = sub.add_parser("latent", help="latent directions, walks and edits")
    lsub = latent.add_subparsers(dest="latent_command", required=True, parser_class=Parser)

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
    e.add_argument("--direction", help="a direction name (see 'studio latent directions'); "
                                                       "diffusion: also a prompt pair FROM->TO")
    e.add_argument("--amount", type=float, help="in the direction's units; 0 = the reconstruction")
    e.add_argument("--keep", action="append", default=[], metavar="NAME", help="keep this direction fixed")
    e.add_argument("--prompt", default="", help="diffusion: what the image shows (optional; helps edits)")
    e.add_argument("--steps", type=int, help="diffusion: denoising / inversion steps")
    e.add_argument("--layout", choices=("auto", "keep", "reshape"),
                   help="diffusion: keep = outlines stay (colour, background); reshape = the edited object is "
                        "redrawn in its box (a new shape); auto (default) = chosen per edit from the change "
                        "the model predicts")
    e.add_argument("--zoom", action=argparse.BooleanOptionalAction, default=None,
                   help="diffusion: make the text edits on a crop around the edited object, enlarged to the "
                        "model's working size, and blend it back (default on; a recipe replays its own)")
    e.add_argument("--also", action="append", default=[], metavar="EDIT=STRENGTH",
                   help="diffusion: another edit at once: FROM->TO=1.0, +CONCEPT=1.0 (add) or -CONCEPT=1.0 "
                        "(remove); repeatable")
    e.add_argument("--recipe", metavar="FILE.png", help="diffusion: replay the edits saved in an earlier edit's PNG")
    e.add_argument("--out", required=True, help="FILE.png (a diffusion edit's recipe goes into its metadata)")
    extra.add_parsers(lsub, common)


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
    elif not args.model and _is_prompt_walk(args) and "latent-diffusion" in plugins:
        plugin = plugins["latent-diffusion"]  # a prompt walk needs an image model: the built-in one
        model = next((m.source for m in plugin.models()), "")
    elif args.model:
        path = Path(args.model).expanduser()
        if not path.exists() and looks_like_path(args.model):
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


def _is_prompt_walk(args) -> bool:
    """A walk whose --from / --to are words, not files (no such file, no path separator, no image
    suffix), is a prompt walk."""
    if getattr(args, "latent_command", "") != "walk":
        return False
    ends = [e for e in (args.walk_from, args.walk_to) if e]

    def path_like(text: str) -> bool:
        p = Path(text).expanduser()
        return p.exists() or "/" in text or "\\" in text or p.suffix.lower() in _IMAGE_SUFFIXES

    return bool(ends) and not any(path_like(e) for e in ends)


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _run_job(session, submit):
    """Queue a job through ``session`` (its one request-building path), wait, hand its events to
    the session as the panel's bridge would, and return its Result (None when it failed)."""
    from studio.plugin_api import ParamError

    events: list = []
    unsubscribe = session.context.engine.subscribe(lambda job, event: events.append((job, event)))
    try:
        try:
            job = submit()
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        ok = wait(session.context, job)
    finally:
        unsubscribe()
    for owner, event in events:
        session.handle(owner, event)
    return job.result if ok else None


def run(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.out_paths import IMAGE_SUFFIXES, WALK_SUFFIXES, plan_out
    from studio.core.sessions.latent import LatentSession, WalkSpec
    from studio.plugin_api import ParamError

    out = None
    if args.latent_command == "walk":
        if not 2 <= args.frames <= 240:
            raise UsageError(f"--frames must be between 2 and 240 (got {args.frames})")
        out = plan_out(args.out, 1, WALK_SUFFIXES, folder_allowed=False)  # .gif/.mp4, or a frames folder
        if out.folder is not None and any(out.folder.glob("frame-*.png")):
            raise UsageError(f"--out: {out.folder} already holds walk frames; they are never replaced, "
                             "choose another folder")
    if args.latent_command == "edit":
        check_image(args.image, "image")
        extra.apply_recipe(args)  # --recipe FILE.png: the edits of an earlier diffusion edit
        if args.direction is None or args.amount is None:
            raise UsageError("the arguments --direction and --amount are required "
                             "(or --recipe FILE.png from an earlier edit)")
        out = plan_out(args.out, 1, IMAGE_SUFFIXES)  # FILE.png, or an output folder
    context = StudioContext.create(settings_for(args))
    try:
        plugin, model = _latent_plugin_for(args, context.registry)
        # The same session the Latent panel uses builds every request below.
        session = LatentSession(context, plugin.id)
        # what the model says it ignores or cannot do (e.g. the SD3 / Flux note) goes to stderr once
        # the command has succeeded (bad input stays one line)
        warnings: list[str] = []
        session.message.connect(lambda level, text: warnings.append(text) if level == "warning" else None)
        session.set_model(model)
        session.direction_files = [str(Path(f).resolve()) for f in args.directions]
        diffusion = session.is_diffusion
        if args.latent_command in extra.COMMANDS:
            return extra.run(args, context, plugin, model, session.direction_files, diffusion)
        if args.latent_command == "directions":
            if _run_job(session, session.load_info) is None:
                return EXIT_FAILED
            _say(warnings)
            for d in session.directions:
                lo, hi = d.range
                print(f"{d.name:<22} {d.kind:<11} [{lo:g}, {hi:g}] {d.units:<28} {d.label}")
            if diffusion:
                print("(prompt pairs work too: --direction 'red->blue')")
            elif not session.directions:
                print("no directions")
            return EXIT_OK
        if args.latent_command == "walk":
            return _walk(args, session, WalkSpec, warnings)
        # edit
        session.use_image(str(Path(args.image).resolve()))
        if diffusion:
            given = {"prompt": args.prompt} | ({"steps": args.steps} if args.steps is not None else {})
            if args.layout:
                given["layout"] = args.layout
            if args.zoom is not None:
                given["zoom"] = args.zoom
            session.set_values(given)
        elif args.layout or args.zoom is not None:
            print("studio: --layout and --zoom apply to diffusion models; ignored for this one", file=sys.stderr)
        pair = "->" in args.direction and diffusion
        if pair:
            a, b = (s.strip() for s in args.direction.split("->", 1))
            if not a or not b:
                raise UsageError(f"a prompt pair looks like FROM->TO (got {args.direction!r})")
            session.set_pair(a, b, args.amount)
            for entry in args.also:
                extra.add_to_session(session, *extra.split_strength(entry))
        else:  # unknown names: one line, before any encoding
            if _run_job(session, session.load_info) is None:
                return EXIT_FAILED
            known = [d.name for d in session.directions]
            for name in [args.direction, *args.keep]:
                if name not in known:
                    shown = ", ".join(known[:24]) + (" ..." if len(known) > 24 else "")
                    raise UsageError(f"unknown direction {name!r}; this model has: {shown or 'none'}"
                                     + (" (or use a prompt pair FROM->TO)" if diffusion else ""))
            try:
                session.set_amount(args.direction, args.amount)
            except ParamError as exc:
                raise UsageError(str(exc)) from None
            for name in args.keep:
                session.set_keep(name, True)
        if args.also and not pair:
            raise UsageError("--also adds edits to a diffusion prompt pair, e.g. --direction red->blue "
                             "--also +glasses=1")
        if getattr(args, "recipe_edits", None):  # a recipe's further direction edits (its files are loaded)
            if pair and _run_job(session, session.load_info) is None:
                return EXIT_FAILED
            known = {d.name for d in session.directions}
            for name, value in args.recipe_edits:
                if name not in known:
                    raise UsageError(f"--recipe: direction {name!r} is neither this model's nor in the recipe's "
                                     "direction files")
                session.set_amount(name, value)
        result = _run_job(session, session.edit)
        if result is None:
            return EXIT_FAILED
        _say(warnings)
        if result.info.get("psnr") is not None:
            print(f"reconstruction PSNR {result.info['psnr']:.2f} dB; applied: "
                  f"{', '.join(result.info.get('applied') or []) or 'nothing (the reconstruction)'}", file=sys.stderr)
            if result.info.get("layout"):
                print(f"layout: {', '.join(result.info['layout'])}", file=sys.stderr)
            if result.info.get("zoom"):
                print(f"zoom: {result.info['zoom']}", file=sys.stderr)
        if result.info.get("method"):  # SD3 / Flux: FlowEdit over the last n_max of the steps
            print(f"method: {result.info['method']}, {result.info.get('n_max')} of {result.info.get('steps')} steps",
                  file=sys.stderr)
        from studio.core.store import OutputStore

        assert out is not None
        if out.files:  # exactly the file named, never replacing one
            print(OutputStore(out.files[0].parent).save(result.artifacts[0], exact=out.files[0]))
        else:  # the folder, with the store's numbered names
            print(OutputStore(out.folder or Path(".")).save(result.artifacts[0], title=f"edit {args.direction}"))
        return EXIT_OK
    finally:
        context.close()


def _say(warnings: list[str]) -> None:
    for text in dict.fromkeys(warnings):
        print(f"studio: warning: {text}", file=sys.stderr)
    warnings.clear()


def _walk(args: argparse.Namespace, session, walk_spec, warnings: list[str]) -> int:
    from studio.plugin_api import ParamError

    if session.is_diffusion:
        if args.walk_from is None and args.seed_from is None:
            raise UsageError("give --from PROMPT and/or --seed-from N")
        given = {"prompt": args.walk_from or ""}
        given.update({k: v for k, v in (("steps", args.steps), ("cfg_scale", args.cfg)) if v is not None})
        session.set_values(given)
        spec = walk_spec(frames=args.frames, from_prompt=args.walk_from or "", to_prompt=args.walk_to or "",
                         from_seed=args.seed_from if args.seed_from is not None else 0, to_seed=args.seed_to)
    else:
        spec = walk_spec(frames=args.frames)
        for side, image, seed in (("from", args.walk_from, args.seed_from), ("to", args.walk_to, args.seed_to)):
            if image:
                check_image(image, f"--{side} image")
                setattr(spec, f"{side}_image", image)
            elif seed is not None:
                setattr(spec, f"{side}_seed", seed)
            else:
                raise UsageError(f"give --{side} IMAGE or --seed-{side} N")
    result = _run_job(session, lambda: session.walk(spec))
    if result is None:
        return EXIT_FAILED
    _say(warnings)
    frames = session.state.walk_frames
    try:
        paths = session.walk_export(args.out, args.fps)
    except ParamError as exc:  # the file the user asked for cannot be written
        raise UsageError(str(exc)) from None
    s = session.state.walk_smoothness
    print(paths[0] if len(paths) == 1 else Path(args.out))
    print(f"{len(frames)} frames; largest step {s.get('max_step', 0):.2f} = {s.get('jump_ratio', 1):.2f}x "
          f"the mean", file=sys.stderr)
    return EXIT_OK
