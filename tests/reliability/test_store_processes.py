"""Several processes on one data folder, and kill -9 at the worst moments: nothing lost,
nothing overwritten, no temp file left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from studio.core.atomic import publish_new, remove_stale_temp_files
from studio.core.history import History
from studio.core.store import OutputStore
from studio.plugin_api import Artifact, Kind

ROOT = Path(__file__).resolve().parents[2]

#: one writer process: N images through the store, each indexed in the shared history
WRITER = r"""
import sys, os
from pathlib import Path
from PIL import Image
from studio.core.history import History
from studio.core.store import OutputStore
from studio.plugin_api import Artifact, Kind
home, worker, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
store, history = OutputStore(home / "outputs"), History(home / "history.sqlite")
for i in range(count):
    image = Image.new("RGB", (8, 8), (worker * 20 % 256, i * 9 % 256, 7))
    artifact = Artifact(Kind.IMAGE, image=image, seed=worker * 1000 + i,
                        parameters={"prompt": "same prompt", "seed": worker * 1000 + i})
    path = store.save(artifact)
    history.add_output(f"w{worker}", "image", path, artifact.seed, artifact.parameters)
history.close()
"""


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))


def test_eight_processes_25_images_each_none_overwritten(tmp_path):
    home = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home), str(w), "25"], env=_env(),
                              stderr=subprocess.PIPE, text=True) for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    files = sorted(p for p in (home / "outputs").rglob("*") if p.is_file() and not p.name.startswith("."))
    rows = sqlite3.connect(home / "history.sqlite").execute("SELECT path, seed FROM outputs").fetchall()
    assert len(files) == 200
    assert len(rows) == 200 and len({path for path, _ in rows}) == 200
    numbers = [int(p.name.split("-")[0]) for p in files]
    assert sorted(numbers) == list(range(200))  # one counter across all processes: no gaps, no repeats
    for path, seed in rows:  # every row points at its own image: none was overwritten by another
        with Image.open(path) as image:
            worker, i = divmod(seed, 1000)
            assert image.getpixel((0, 0)) == (worker * 20 % 256, i * 9 % 256, 7)
    assert not [p for p in (home / "outputs").rglob("*.tmp")]


def test_files_get_the_users_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = OutputStore(tmp_path).save(Artifact(Kind.IMAGE, image=Image.new("RGB", (4, 4)), seed=1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_existing_file_is_never_replaced(tmp_path):
    store = OutputStore(tmp_path)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"precious")
    artifact = Artifact(Kind.IMAGE, image=Image.new("RGB", (4, 4)), seed=1)
    try:
        store.save(artifact, exact=mine)
    except FileExistsError:
        pass
    else:
        raise AssertionError("replaced an existing file")
    assert mine.read_bytes() == b"precious"
    # a numbered name someone else took meanwhile is skipped, not replaced
    day = store.day_folder()
    day.mkdir(parents=True)
    (day / "00000-1-untitled.png").write_bytes(b"theirs")
    (day / "00001-9-other.png").write_bytes(b"theirs too")
    saved = store.save(artifact)
    assert saved.name.startswith("00002-") and (day / "00000-1-untitled.png").read_bytes() == b"theirs"
    try:
        publish_new(mine, b"new")
    except FileExistsError:
        assert mine.read_bytes() == b"precious"
    else:
        raise AssertionError("publish_new replaced a file")


#: a batch through the real engine: 4 images, each saved as it is done (ArtifactReady), slowly
BATCH = r"""
import sys, time
from pathlib import Path
from PIL import Image
from studio.core.context import StudioContext
from studio.core.jobs import JobSpec
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio.plugin_api import (API_VERSION, Artifact, ArtifactReady, Kind, ModelChoice, Param, ParamType,
                               Progress, Result)

class Slow:
    device, memory_bytes, source = "cpu", 0, "m"
    def run(self, request, cancel):
        made = []
        for i in range(request["batch_count"]):
            time.sleep(float(sys.argv[1]))
            seed = request["seed"] + i
            art = Artifact(Kind.IMAGE, image=Image.new("RGB", (8, 8), (seed % 256, 0, 0)), seed=seed,
                           parameters={"prompt": "batch", "seed": seed, "batch_index": i})
            made.append(art)
            yield Progress(i + 1, request["batch_count"])
            yield ArtifactReady(art)
        yield Result(tuple(made))
    def unload(self): pass

class Plugin:
    id, label, kind, api_version = "batchy", "Batchy", Kind.IMAGE, API_VERSION
    def parameters(self):
        return [Param("prompt", ParamType.TEXT, ""), Param("seed", ParamType.INT, 0),
                Param("batch_count", ParamType.INT, 1, minimum=1, maximum=16)]
    def modes(self): return []
    def models(self): return [ModelChoice("m", "m")]
    def load(self, source, options, progress): return Slow()

registry = Registry()
registry.add("batchy", Plugin)
context = StudioContext.create(Settings(), registry)
if sys.argv[2] == "resume":
    records = context.engine.unfinished_from_last_session()
    jobs = [context.engine.resubmit(r) for r in records]
    for job in jobs:
        job.wait(60)
        print("RESUMED", job.request["seed"], job.request["batch_count"], len(job.saved), flush=True)
else:
    job = context.engine.submit(JobSpec("batchy", "m", {"prompt": "batch", "seed": 100, "batch_count": 4}))
    job.wait(60)
context.close()
"""


def _pngs(home):
    return sorted(p for p in (home / "outputs").rglob("*.png"))


def test_kill_9_at_image_3_of_4_keeps_1_and_2_and_run_again_makes_only_3_and_4(tmp_path):
    home = tmp_path / "home"
    env = dict(_env(), STUDIO_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-c", BATCH, "0.6", "first"], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_pngs(home)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # during image 3 (each takes 0.6 s)
    proc.wait()
    kept = _pngs(home)
    assert len(kept) == 2
    for path in kept:  # complete files
        with Image.open(path) as image:
            image.load()
    done = subprocess.run([sys.executable, "-c", BATCH, "0.01", "resume"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RESUMED 102 2 2" in done.stdout  # images 3 and 4 only: seeds 102, 103
    seeds = sorted(int(p.name.split("-")[1]) for p in _pngs(home))
    assert seeds == [100, 101, 102, 103]


#: saves large text outputs in a loop, forever, so that a kill can land mid-write
SAVER = r"""
import sys
from pathlib import Path
from studio.core.store import OutputStore
from studio.plugin_api import Artifact, Kind
store = OutputStore(Path(sys.argv[1]))
text = "0123456789abcdef" * (40 * 2**20 // 16)  # 40 MB: the write takes a while
for i in range(10_000):
    store.save(Artifact(Kind.TEXT, text=text, seed=i, parameters={"prompt": "big"}))
"""
SIZE = 40 * 2**20


def test_kill_9_during_saves_leaves_only_complete_files_and_no_temp_after_restart(tmp_path):
    root = tmp_path / "outputs"
    for _ in range(3):
        before = set(root.rglob("*.tmp"))
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(root)], env=_env())
        deadline = time.monotonic() + 60
        while not set(root.rglob("*.tmp")) - before and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)  # while a temp file is being written
        proc.wait()
        for path in root.rglob("*.txt"):  # every published file is whole
            assert path.stat().st_size == SIZE
    left = list(root.rglob("*.tmp"))
    assert len(left) == 3, "a kill did not land mid-write; the test proved nothing"
    removed = remove_stale_temp_files(root)  # what the next start does (StudioContext.create)
    assert sorted(removed) == sorted(left)
    assert not list(root.rglob("*.tmp"))
    assert _count_numbers_unique(root)


def _count_numbers_unique(root: Path) -> bool:
    names = [p.name.split("-")[0] for p in root.rglob("*.txt")]
    return len(names) == len(set(names))


def test_stale_temp_of_a_live_process_is_kept(tmp_path):
    mine = tmp_path / f".x.png.{os.getpid()}-0123abcd.tmp"
    mine.write_bytes(b"being written")
    dead = tmp_path / ".y.png.999999-0123abcd.tmp"  # no such process
    dead.write_bytes(b"left by a crash")
    removed = remove_stale_temp_files(tmp_path)
    assert removed == [dead] and mine.exists()


def test_history_of_many_processes_is_one_readable_database(tmp_path):
    history = History(tmp_path / "h.sqlite")
    history.add_output("j", "image", tmp_path / "a.png", 1, {})
    history.close()
    assert len(History(tmp_path / "h.sqlite").outputs("image")) == 1


def test_a_new_history_opened_while_another_process_writes_it_waits_instead_of_failing(tmp_path):
    """Converting a file to WAL needs it to itself, and while another connection holds the write
    lock of a not-yet-converted file SQLite refuses at once, without the busy handler: a second
    studio opening a brand-new history while the first was creating it failed with "database is
    locked" whatever the timeout (CI, eight writers). The writer here is held 0.4 s, then let go."""
    import threading

    path = tmp_path / "history.sqlite"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE held (x)")  # a rollback-journal file, as before any studio converted it
    writer.execute("BEGIN IMMEDIATE")  # the write lock another studio holds while it creates the tables
    threading.Timer(0.4, lambda: writer.execute("COMMIT")).start()
    started = time.monotonic()
    history = History(path)
    waited = time.monotonic() - started
    try:
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert waited >= 0.3  # it waited for the writer rather than failing or converting past it
    finally:
        history.close()
        writer.close()
