"""`studio latent quality|discover` and the edit helpers of `studio latent edit` (several edits at
once, the edit recipe in the PNG).  Kept beside :mod:`studio.cli.latent` so that module stays small."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.cli.common import EXIT_FAILED, EXIT_OK, UsageError, is_number

COMMANDS = ("quality", "discover")


def add_parsers(lsub: Any, common: Callable[[Any], None]) -> None:
    q = lsub.add_parser("quality", help="measure edit quality on held-out drawn scenes (ShapeEval read-back)")
    common(q)
    q.add_argument("--scenes", type=int, default=20, help="drawn scenes per figure (default 20)")
    q.add_argument("--edit", action="append", default=[], metavar="FROM->TO",
                   help="diffusion: a text edit to measure (default red->blue and circle->square, or none "
                        "when --directions files are given: then their directions are measured); repeatable")
    q.add_argument("--no-prompt", action="store_true", help="diffusion: edit without the scenes' captions")
    q.add_argument("--layout", choices=("auto", "keep", "reshape"),
                   help="diffusion: how the measured edits may change the layout (default auto)")
    q.add_argument("--zoom", action=argparse.BooleanOptionalAction, default=None,
                   help="diffusion: measure the edits made on a crop around the object (default on)")
    q.add_argument("--steps", type=int, help="diffusion: denoising / inversion steps")
    q.add_argument("--seed", type=int, default=0, help="which drawn scenes (default 0)")
    q.add_argument("--json", dest="json_out", metavar="FILE", help="also write the figures as JSON")
    d = lsub.add_parser("discover", help="diffusion: find directions without training (PCA) and save them")
    common(d)
    d.add_argument("--source", choices=("h-space", "text"), default="h-space")
    d.add_argument("--prompt", default="", help="the prompt the samples / variations start from")
    d.add_argument("--variation", action="append", default=[], metavar="TEXT",
                   help="text: a prompt variation; repeatable (default: common attributes)")
    d.add_argument("--count", type=int, default=32, help="h-space: images sampled (default 32)")
    d.add_argument("--components", type=int, default=6)
    d.add_argument("--name", action="append", default=[], metavar="NAME", help="name for PC 1, PC 2, ...")
    d.add_argument("--out", required=True, help="FILE.json or FILE.safetensors")


def split_strength(entry: str) -> tuple[str, float]:
    head, sep, tail = entry.rpartition("=")
    if not sep or not head.strip() or not is_number(tail):
        raise UsageError(f"--also takes EDIT=STRENGTH, e.g. red->blue=1.0 or +glasses=0.8 (got {entry!r})")
    return head.strip(), float(tail)


def add_to_session(session: Any, edit: str, amount: float) -> None:
    """FROM->TO (one more prompt pair) or +CONCEPT / -CONCEPT (add / remove) on the latent session."""
    if "->" in edit:
        a, b = (s.strip() for s in edit.split("->", 1))
        if not a or not b:
            raise UsageError(f"a prompt pair looks like FROM->TO (got {edit!r})")
        session.pairs.append([a, b, amount])
    elif edit[:1] in "+-" and len(edit) > 1:
        session.concepts.append([edit[1:].strip(), (1.0 if edit[0] == "+" else -1.0) * amount])
    else:
        raise UsageError(f"--also takes FROM->TO=S, +CONCEPT=S or -CONCEPT=S (got {edit!r})")


def apply_recipe(args: Any) -> None:
    """Fill ``args`` from the ``studio-recipe`` chunk of ``args.recipe`` (a PNG an earlier diffusion
    edit saved): prompt, steps, prompt pairs, concepts and direction edits (with the direction files
    they came from; ``args.recipe_edits`` holds them for :func:`studio.cli.latent.run`).  What the CLI
    cannot replay is refused or reported on stderr, never silently dropped."""
    args.recipe_edits = []
    if not getattr(args, "recipe", None):
        return
    from PIL import Image

    from studio.core.store import RECIPE_CHUNK

    try:
        with Image.open(args.recipe) as image:
            text = getattr(image, "text", {}).get(RECIPE_CHUNK)
    except OSError as exc:
        raise UsageError(f"cannot read --recipe {args.recipe}: {exc}") from None
    try:
        recipe = json.loads(text) if text else None
    except ValueError:
        recipe = None
    if not isinstance(recipe, dict) or not (recipe.get("pairs") or recipe.get("concepts") or recipe.get("edits")):
        raise UsageError(f"--recipe {args.recipe} holds no diffusion edit recipe with prompt pairs, concepts or "
                         "direction edits")
    edits = _recipe_edits(recipe, args)
    if args.direction is not None or args.amount is not None or args.also:
        raise UsageError("--recipe replays the saved edits; give it without --direction, --amount or --also")
    pairs = [list(p) for p in recipe.get("pairs") or ()]
    concepts = [list(c) for c in recipe.get("concepts") or ()]
    first = pairs.pop(0) if pairs else None
    if first is None and edits and not concepts:  # direction edits only: the first one leads
        (name, value), *rest = edits
        args.direction, args.amount, args.recipe_edits = name, value, rest
    else:
        if first is None:  # concepts only: a zero pair carries them (amount 0 of a pair is no edit)
            first = ["_", "_", 0.0]
        args.direction, args.amount, args.recipe_edits = f"{first[0]}->{first[1]}", float(first[2]), edits
    args.also = [f"{a}->{b}={float(v)}" for a, b, v in pairs]
    args.also += [f"{'+' if float(v) >= 0 else '-'}{c}={abs(float(v))}" for c, v in concepts]
    args.prompt = args.prompt or str(recipe.get("prompt") or "")
    if args.steps is None and recipe.get("steps"):
        args.steps = int(recipe["steps"])
    if getattr(args, "layout", None) is None and recipe.get("layout") in ("auto", "keep", "reshape"):
        args.layout = str(recipe["layout"])
    if getattr(args, "zoom", None) is None:  # a recipe from before the zoom was an edit of the whole picture
        args.zoom = bool(recipe.get("zoom", False))
    defaults = {"skip": 0.2, "refine": 30, "masks": True, "draft": False}
    differ = [f"{k}={recipe[k]}" for k, v in defaults.items() if k in recipe and recipe[k] != v]
    if differ:
        print(f"studio: --recipe: {', '.join(differ)} cannot be replayed from the command line; the defaults "
              f"were used", file=sys.stderr)


def _job(context: Any, plugin: Any, model: str, mode: str, request: dict) -> Any:
    from studio.cli.common import wait
    from studio.core.jobs import JobSpec
    from studio.plugin_api import ParamError, validate_request

    try:
        validate_request(plugin.parameters(), request, mode)
        job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, mode=mode, request=request,
                                            options=context.load_options(), save=False))
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    return job.result if wait(context, job) else None


def run(args: Any, context: Any, plugin: Any, model: str, files: list[str], diffusion: bool) -> int:
    job = _job
    if args.latent_command == "discover":
        if not diffusion:
            raise UsageError("discover finds directions on diffusion pipelines; the vector VAE's are 'fit'")
        if Path(args.out).suffix.lower() not in (".json", ".safetensors"):
            raise UsageError(f"--out must end in .json or .safetensors (got {args.out})")
        request = {"source": args.source, "prompt": args.prompt, "count": args.count, "components": args.components,
                   "names": list(args.name), "variations": list(args.variation), "output": str(Path(args.out))}
        result = job(context, plugin, model, "discover", request)
        if result is None:
            return EXIT_FAILED
        for e in result.info.get("directions", []):
            print(f"{e['name']:<12} {e.get('label', ''):<14} explains {100 * float(e.get('score') or 0):5.1f}%  "
                  f"({e.get('notes', '')})")
        print(result.info.get("saved_direction") or args.out)
        return EXIT_OK
    # quality
    if args.scenes < 1:
        raise UsageError(f"--scenes must be at least 1 (got {args.scenes})")
    if diffusion:
        request: dict = {"scenes": args.scenes, "seed": args.seed, "prompted": not args.no_prompt,
                         "direction_files": files}
        if args.edit:
            request["measure"] = list(args.edit)
        if args.steps is not None:
            request["steps"] = args.steps
        if args.layout:
            request["layout"] = args.layout
        if args.zoom is not None:
            request["zoom"] = args.zoom
    else:
        if args.edit or args.no_prompt or args.steps is not None or args.layout or args.zoom is not None:
            print("studio: --edit, --no-prompt, --steps, --layout and --zoom apply to diffusion models; ignored "
                  "for the vector VAE", file=sys.stderr)
        request = {"bases": max(1, min(64, args.scenes)), "direction_files": files, "seed": args.seed}
    result = job(context, plugin, model, "quality", request)
    if result is None:
        return EXIT_FAILED
    rows = result.info.get("quality", {})
    if diffusion:
        _print_diffusion_quality(rows, result.info.get("method", ""))
        _print_slider_quality(result.info.get("sliders") or {})
    else:
        for name, r in rows.items():
            mono = r.get("monotonicity")
            print(f"{name:<18} target {r.get('target', '?'):<10} selectivity {r.get('selectivity', 0):.2f}  "
                  f"monotonicity {'n/a' if mono is None else f'{mono:.2f}'}  {r.get('grade', '')}")
    if args.json_out:
        from studio.core.atomic import write_text_atomic

        write_text_atomic(Path(args.json_out), json.dumps({"quality": rows, "sliders": result.info.get("sliders"),
                                                           "method": result.info.get("method")},
                                                          indent=1, default=str))
    return EXIT_OK


def _print_slider_quality(rows: dict) -> None:
    """Directions (and other sliders) measured by a strength sweep: the line the panel shows beside
    each slider, here as the mean over the drawn scenes."""
    from studio.core.sessions.diffusion_edit import quality_words

    if rows:
        strengths = next(iter(rows.values())).get("strengths") or ()
        print(f"directions, swept over strengths {', '.join(f'{float(s):g}' for s in strengths)} on "
              f"{next(iter(rows.values())).get('n', '?')} drawn scenes each:")
    for name, r in rows.items():
        line, _ = quality_words(r)
        print(f"{name:<22} {line}")


def _print_diffusion_quality(rows: dict, method: str) -> None:
    rec = rows.get("reconstruction")
    if rec:
        print(f"reconstruction (strength 0)  median PSNR {rec['median_psnr']:.2f} dB (min {rec['min_psnr']:.2f}); "
              f"colour, shape, position, background unchanged in {100 * rec['unchanged']:.0f}% of {rec['n']} scenes")
    for name, r in rows.items():
        if name == "reconstruction":
            continue
        mono = r.get("monotonicity")
        print(f"{name:<22} success {100 * r['success']:.0f}% of {r['n']}  selectivity {r['selectivity']:.2f}  "
              f"monotonicity {'n/a' if mono is None else f'{mono:.2f}'}  {r['grade']}")
        if r.get("failures"):
            print("    misses: " + "; ".join(f"{k} ({v})" for k, v in r["failures"].items()))
        if r.get("layouts"):
            print("    layout at strength 1: " + ", ".join(f"{k} in {v}" for k, v in sorted(r["layouts"].items())))
    if method:
        print(f"({method})")


def _recipe_edits(recipe: dict, args: Any) -> list[tuple[str, float]]:
    """The recipe's direction edits as (name, amount); its direction files join ``args.directions``
    (when a saved one is gone: the user's ``--directions`` stand in for it, or one clear sentence)."""
    try:
        edits = [(str(name), float(value)) for name, value in recipe.get("edits") or ()]
    except (TypeError, ValueError):
        raise UsageError(f"--recipe {args.recipe}: its direction edits are not [name, amount] pairs") from None
    if not edits:
        return []
    given = {Path(f).resolve() for f in args.directions}
    for saved in recipe.get("direction_files") or ():
        path = Path(str(saved))
        if path.resolve() in given:
            continue
        if not path.is_file() and given:  # the user points at the files; unknown names are checked later
            continue
        if not path.is_file():
            raise UsageError(f"--recipe: its direction edits came from {path}, which is not here; "
                             "pass that file (or a copy) with --directions FILE")
        args.directions.append(str(path))
        given.add(path.resolve())
    return edits
