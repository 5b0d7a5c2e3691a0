"""One sweep in one output folder: what is done, what is left, recording items, the grids.

The backends (:mod:`local`, :mod:`ray_backend`) only run items and hand each finished one to
:meth:`SweepRunner.record`; the manifest, the progress count and the grids live here once, so
a sweep resumed with the other backend carries on where the first stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.store import slugify
from studio.core.sweeps.grid import GridAxis, make_grid, save_grid
from studio.core.sweeps.manifest import DoneItem, Manifest
from studio.core.sweeps.plan import SweepItem, SweepPlan

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class SweepRunner:
    def __init__(self, plan: SweepPlan, folder: Path):
        self.plan = plan
        self.folder = Path(folder)
        self.manifest = Manifest(self.folder)
        self.ran_now: set[str] = set()  # keys finished by this process
        self.listeners: list[Callable[[SweepItem, DoneItem], None]] = []

    # -- what is left ----------------------------------------------------------------------
    def pending(self) -> list[SweepItem]:
        """Items not in the manifest yet, each request once (identical items run once)."""
        seen: set[str] = set()
        left = []
        for item in self.plan.items:
            if item.key in self.manifest.done or item.key in seen:
                continue
            seen.add(item.key)
            left.append(item)
        return left

    @property
    def total(self) -> int:
        return len({item.key for item in self.plan.items})

    @property
    def done_count(self) -> int:
        return sum(1 for key in {item.key for item in self.plan.items} if key in self.manifest.done)

    def measured_seconds(self) -> float | None:
        """Median run time of the items finished so far (any run, any backend), or None."""
        times = sorted(d.seconds for d in self.manifest.done.values() if d.seconds > 0)
        return times[len(times) // 2] if times else None

    # -- recording -------------------------------------------------------------------------
    def begin(self) -> None:
        """Lock the folder for this process and write the manifest header (first run only)."""
        self.manifest.lock()
        plan = self.plan
        self.manifest.start({"file": plan.sweep.path.name, "sha256": plan.sweep.digest, "plugin": plan.plugin_id,
                             "model": plan.model, "mode": plan.mode, "items": self.total,
                             "random_seed": plan.random_seed})

    def end(self) -> None:
        self.manifest.unlock()

    def record(self, item: SweepItem, files: list[Path], seconds: float, backend: str) -> DoneItem:
        """An item's files are complete on disk: remember it (once; a duplicate is ignored)."""
        if item.key in self.manifest.done:
            log.warning("item %s finished twice; the second result is not recorded", item.index)
            return self.manifest.done[item.key]
        done = self.manifest.record(item.key, item.index, files, seconds, backend)
        self.ran_now.add(item.key)
        for listener in list(self.listeners):
            listener(item, done)
        return done

    def manifest_files(self) -> list[Path]:
        """Every file this plan's finished items made (in item order)."""
        keys = dict.fromkeys(item.key for item in self.plan.items)
        return [path for key in keys for path in self.manifest.files_of(key)]

    # -- grids -----------------------------------------------------------------------------
    def write_grids(self, force: bool = False) -> list[Path]:
        """One labelled grid per seed and Z value, for image results with at least one axis.

        A grid is (re)written when one of its items ran in this process, when it is missing,
        or with ``force``; grids with unfinished items are left for a later run."""
        plan = self.plan
        x_axis, y_axis, z_axis = plan.axis("X"), plan.axis("Y"), plan.axis("Z")
        if x_axis is None:
            return []
        groups: dict[tuple[int, int], list[SweepItem]] = {}
        for item in plan.items:
            groups.setdefault((item.seed_index, item.z), []).append(item)
        written = []
        for (seed_index, z), items in groups.items():
            path = self.folder / self._grid_name(seed_index, z)
            if not force and path.exists() and not any(i.key in self.ran_now for i in items):
                continue
            if not all(i.key in self.manifest.done for i in items):
                continue
            tiles = {}
            for item in items:
                image = self._first_image(item)
                if image is None:
                    break
                tiles[(item.x, item.y)] = image
            else:
                header = self._header(seed_index, z)
                image = make_grid(tiles, GridAxis(x_axis.title, x_axis.labels),
                                  GridAxis(y_axis.title, y_axis.labels) if y_axis else None, header)
                where = {"seed": plan.seeds[seed_index], "z": z_axis.labels[z] if z_axis else None,
                         "x": list(x_axis.labels), "y": list(y_axis.labels) if y_axis else None}
                texts = {"sweep": plan.sweep.text, "sweep_file": plan.sweep.path.name, "sweep_grid": json.dumps(where)}
                written.append(save_grid(path, image, texts))
        return written

    def grid_paths(self) -> list[Path]:
        groups = {(item.seed_index, item.z) for item in self.plan.items}
        return [self.folder / self._grid_name(s, z) for s, z in sorted(groups)] if self.plan.axis("X") else []

    def _grid_name(self, seed_index: int, z: int) -> str:
        seed = self.plan.seeds[seed_index]
        name = "grid" + (f"-seed{seed}" if seed is not None else "")
        z_axis = self.plan.axis("Z")
        if z_axis is not None:
            name += f"-z{z + 1}-{slugify(z_axis.labels[z], 30)}"
        return name + ".png"

    def _header(self, seed_index: int, z: int) -> str:
        plan = self.plan
        parts = [f"{plan.sweep.path.name}", f"model {plan.model_label}"]
        seed = plan.seeds[seed_index]
        if seed is not None:
            parts.append(f"seed {seed}")
        z_axis = plan.axis("Z")
        if z_axis is not None:
            parts.append(f"Z: {z_axis.title} = {z_axis.labels[z]}")
        return " · ".join(parts)

    def _first_image(self, item: SweepItem) -> Any:
        from PIL import Image

        for path in self.manifest.files_of(item.key):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.exists():
                with Image.open(path) as image:
                    return image.convert("RGB")
        return None
