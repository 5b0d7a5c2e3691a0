"""The X/Y/Z dialog's view-model: axes over a form's own parameters, run on the local engine.

It starts from a snapshot of a panel's state (plugin, model, mode, form values), lets the user
pick up to three parameters and type their values as lists or ranges ("3, 5, 7", "1-9 [5]";
for text parameters A1111's Prompt S/R: the first value is the text to replace), and turns
that into a real sweep file (JSON) so the run is the same one ``studio sweep`` would make.
The items go through the job queue one at a time; the grid is ready when the last one is.

No Qt here: the dialog binds to :attr:`changed` / :attr:`message` and forwards engine events
(from the bridge, on the GUI thread) to :meth:`handle`.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psygnal import Signal

from studio.core.atomic import write_text_atomic
from studio.core.context import StudioContext
from studio.core.jobs import Job
from studio.core.progress import ProgressClock
from studio.core.sweeps.local import LocalSweep, Outcome
from studio.core.sweeps.plan import SweepPlan, build
from studio.core.sweeps.runner import SweepRunner
from studio.core.sweeps.spec import AXIS_NAMES, SweepError, parse
from studio.plugin_api import Param, ParamType, Progress

#: parameter types an axis can sweep (paths and lists have no meaningful "values" to type)
SWEEPABLE = (ParamType.INT, ParamType.FLOAT, ParamType.TEXT, ParamType.STR, ParamType.CHOICE,
             ParamType.BOOL, ParamType.SEED, ParamType.SIZE)
_SKIP = ("preview_every", "batch_count")  # they change how a run is shown or batched, not the picture


@dataclass
class AxisDraft:
    param: str = ""  # empty: this axis is off
    values: str = ""  # as typed


class SweepSession:
    #: "axes", "plan", "state", "progress", "grids"
    changed = Signal(str)
    #: (level, text): info | warning | error
    message = Signal(str, str)

    def __init__(self, context: StudioContext, plugin_id: str, model: str, mode: str | None,
                 values: dict[str, Any]):
        self.context = context
        self.plugin = context.registry.get(plugin_id)
        self.model = model
        self.mode = mode
        self.values = dict(values)
        self.axes = [AxisDraft() for _ in AXIS_NAMES]
        self.plan: SweepPlan | None = None
        self.problem = ""  # why the current axes cannot run, one sentence
        self.runner: SweepRunner | None = None
        self.sweep: LocalSweep | None = None
        self.outcome: Outcome | None = None
        self.grids: list[Path] = []
        self.item_clock = ProgressClock()  # over items: the ETA of the whole sweep
        self.step = (0, 0)  # the running item's (step, total)
        # A form with a random seed gets one seed for the whole sweep, the same in the preview
        # of the plan and in the run, written into the sweep file.
        self.random_seed = secrets.randbelow(2**32)

    # -- what the dialog offers ---------------------------------------------------------------
    def sweepable_parameters(self) -> list[Param]:
        return [p for p in self.plugin.parameters()
                if p.type in SWEEPABLE and p.name not in _SKIP and (not p.modes or self.mode in p.modes)]

    @staticmethod
    def is_search_replace(param: Param) -> bool:
        return param.type in (ParamType.TEXT, ParamType.STR)

    def set_axis(self, index: int, param: str, values: str) -> None:
        self.axes[index] = AxisDraft(param, values)
        self.changed.emit("axes")
        self.refresh_plan()

    # -- the plan -----------------------------------------------------------------------------
    def sweep_document(self) -> dict[str, Any]:
        """The sweep file these axes describe (what is saved beside the grid and embedded in it)."""
        by_name = {p.name: p for p in self.plugin.parameters()}
        visible = {p.name for p in self.plugin.parameters() if not p.modes or self.mode in p.modes}
        axes = []
        for draft in self.axes:
            if not draft.param or not draft.values.strip():
                continue
            param = by_name.get(draft.param)
            entry: dict[str, Any] = {"param": draft.param}
            if param is not None and self.is_search_replace(param):
                words = [w.strip() for w in draft.values.split(",") if w.strip()]
                entry["replace"] = words[0] if words else ""
                entry["values"] = words
            else:
                entry["values"] = draft.values.strip()
            axes.append(entry)
        document: dict[str, Any] = {"kind": self.plugin.kind.value, "plugin": self.plugin.id, "model": self.model}
        if self.mode is not None:
            document["mode"] = self.mode
        swept = {a["param"] for a in axes if "replace" not in a}
        for name, value in self.values.items():
            if name in visible and name not in swept and name not in _SKIP and value is not None:
                document[name] = list(value) if isinstance(value, tuple) else value
        seed = next((p.name for p in self.plugin.parameters() if p.type is ParamType.SEED), None)
        if seed is not None and seed not in swept and document.get(seed) in (None, -1):
            document[seed] = self.random_seed  # the file alone remakes the same pictures
        document["axis"] = axes
        return document

    def refresh_plan(self) -> SweepPlan | None:
        """Check the axes now (as the user types); the problem, if any, is one sentence."""
        document = self.sweep_document()
        self.plan, self.problem = None, ""
        if not document["axis"]:
            self.problem = "Choose a parameter for X and type its values."
        else:
            try:
                self.plan = build(parse(json.dumps(document), Path("xyz.json")), self.context.registry,
                                  random_seed=self.random_seed)
            except SweepError as exc:
                self.problem = str(exc).removeprefix("xyz.json: ")
        self.changed.emit("plan")
        return self.plan

    # -- running ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.sweep is not None and self.outcome is None

    def start(self) -> Path | None:
        """Write the sweep file into a new folder and queue the first item; returns the folder."""
        if self.running:
            return None
        document = self.sweep_document()
        folder = self.context.settings.outputs / "sweeps" / _dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
        text = json.dumps(document, indent=2)
        try:
            plan = build(parse(text, folder / "sweep.json"), self.context.registry, random_seed=self.random_seed)
        except SweepError as exc:
            self.problem = str(exc).removeprefix("sweep.json: ")
            self.message.emit("error", self.problem)
            self.changed.emit("plan")
            return None
        write_text_atomic(folder / "sweep.json", text)  # `studio sweep` reruns it from here
        self.plan, self.outcome, self.grids = plan, None, []
        self.runner = SweepRunner(plan, folder)
        self.runner.begin()
        self.runner.listeners.append(self._on_item)
        self.item_clock.reset()
        self.item_clock.update(0, self.runner.total)
        self.sweep = LocalSweep(self.runner, self.context.engine, self.context.load_options(), self._on_finish)
        self.changed.emit("state")
        self.message.emit("info", f"Sweep of {self.runner.total} items queued; results go to {folder}.")
        self.sweep.start()
        return folder

    def stop(self) -> None:
        if self.sweep is not None:
            self.sweep.stop()

    def handle(self, job: Job, event: object) -> None:
        """Engine events, on one thread at a time (the GUI thread in the app)."""
        if self.sweep is None or job is not self.sweep.current:
            return
        if isinstance(event, Progress):
            self.step = (event.step, event.total)
            self.changed.emit("progress")
        self.sweep.handle(job, event)

    @property
    def done(self) -> int:
        return self.runner.done_count if self.runner else 0

    @property
    def total(self) -> int:
        return self.runner.total if self.runner else (len(self.plan.items) if self.plan else 0)

    def _on_item(self, item: Any, done: Any) -> None:
        self.item_clock.update(self.done, self.total)
        self.step = (0, 0)
        self.changed.emit("progress")

    def _on_finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if self.runner is not None:
            self.runner.end()
            self.grids = self.runner.write_grids()
        self.changed.emit("state")
        if self.grids:
            self.changed.emit("grids")
        if outcome.ok:
            self.message.emit("info", f"Sweep done: {self.done} items, {len(self.grids)} grid(s).")
        else:
            self.message.emit("warning" if outcome.message == "Stopped." else "error",
                              f"{outcome.message} {self.done} of {self.total} items are saved.")
