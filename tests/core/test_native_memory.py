import ctypes
import sys
import threading
import time

import pytest

from studio.core import native_memory


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc(), reason="the thresholds are a glibc setting")
def test_thresholds_are_set_on_glibc():
    assert native_memory.reuse_freed_memory_on_threads() is True


def test_tried_once_per_process(monkeypatch):
    monkeypatch.setattr(native_memory, "_applied", None)
    calls = []
    monkeypatch.setattr(native_memory, "_set_thresholds", lambda: calls.append(1) or True)
    assert native_memory.reuse_freed_memory_on_threads() is True
    assert native_memory.reuse_freed_memory_on_threads() is True
    assert calls == [1]


def test_engine_applies_it_on_its_worker_thread(tmp_path, monkeypatch):
    from studio.core.history import History
    from studio.core.jobs import Engine
    from studio.core.registry import Registry
    from studio.core.store import OutputStore

    monkeypatch.setattr(native_memory, "_applied", None)
    seen = []
    monkeypatch.setattr(native_memory, "_set_thresholds", lambda: seen.append(threading.current_thread().name) or True)
    engine = Engine(Registry(), OutputStore(tmp_path / "out"), History(tmp_path / "h.sqlite"))
    try:
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        engine.shutdown()
    assert seen == ["studio-engine"]
