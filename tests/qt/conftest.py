"""GUI test setup: offscreen Qt, a fresh STUDIO_HOME per test, and factories that build a
MainWindow / ImagePanel on a registry holding the tiny in-test image plugin.  On teardown
every engine the factories made must have stopped its worker thread."""

from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.settings import Settings
from tests.qt.tiny_plugin import TinyImagePlugin


@pytest.fixture(autouse=True)
def studio_home(tmp_path, monkeypatch):
    home = tmp_path / "studio-home"
    home.mkdir()
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    return home


@pytest.fixture
def tiny_plugin() -> TinyImagePlugin:
    return TinyImagePlugin()


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "studio-engine" and t.is_alive()]


@pytest.fixture
def make_context(tiny_plugin):
    """``make_context(extra=[(name, factory), ...])`` -> StudioContext with the tiny plugin first."""
    contexts: list[StudioContext] = []

    def factory(extra=(), plugin=None, settings: Settings | None = None) -> StudioContext:
        registry = Registry()
        chosen = plugin or tiny_plugin
        registry.add("tiny", lambda: chosen)
        for name, plugin_factory in extra:
            registry.add(name, plugin_factory)
        context = StudioContext.create(settings or Settings(), registry)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        if context.engine.alive:  # a test may have closed it already
            context.close()
    for context in contexts:
        assert not context.engine.alive, "the engine's worker thread did not stop"


@pytest.fixture
def make_window(qtbot, make_context):
    """``make_window(**context_kwargs)`` -> a shown MainWindow; shut down on teardown."""
    from studio.qt.main_window import MainWindow

    windows = []

    def factory(**kwargs):
        window = MainWindow(make_context(**kwargs))
        window.confirm_close = False
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield factory
    for window in windows:
        window.shutdown()
    assert not _engine_threads(), "an engine thread is still running after teardown"


@pytest.fixture
def make_panel(qtbot, make_context):
    """``make_panel(**context_kwargs)`` -> an ImagePanel with its own EngineBridge."""
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.image import ImagePanel

    made = []

    def factory(**kwargs):
        context = make_context(**kwargs)
        bridge = EngineBridge(context.engine)
        panel = ImagePanel(context, bridge)
        bridge.feed(panel.session)  # what the main window wires
        panel.resize(1200, 800)
        qtbot.addWidget(panel)
        panel.show()
        made.append((bridge, context))
        return panel

    yield factory
    for bridge, context in made:
        bridge.close()
        context.close()
    assert not _engine_threads(), "an engine thread is still running after teardown"
