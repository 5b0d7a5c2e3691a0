"""``run_gui``: the application object, the studio context and the main window."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from studio.core.context import StudioContext
from studio.core.errors import describe
from studio.core.logs import setup_logging, with_log_hint
from studio.core.settings import ensure_writable_home
from studio.qt.main_window import MainWindow
from studio.qt.theme import apply_theme


def _close_when_shown(window: MainWindow, shown_file: Path) -> None:
    """Write the wall-clock time the window is first exposed to ``shown_file``, then close it."""
    handle = window.windowHandle()
    if handle is None or not handle.isExposed():
        QTimer.singleShot(5, lambda: _close_when_shown(window, shown_file))
        return
    shown_file.write_text(repr(time.time()), encoding="utf-8")
    window.confirm_close = False
    window.close()


def _report_unexpected(window: MainWindow):
    """An exception escaping a Qt slot would print a traceback on the terminal (PySide6 calls
    sys.excepthook): log it, and tell the user in one sentence in the window's info bar."""
    log = logging.getLogger("studio.qt")

    def hook(kind, exc, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            window.close()
            return
        log.error("unexpected error in the window", exc_info=(kind, exc, tb))
        try:
            window.info_bar.show_message(with_log_hint(f"Something went wrong: {describe(exc)}"), "error")
        except Exception:  # noqa: BLE001 - the window itself may be what failed; the log has it
            pass

    return hook


def run_gui(argv: list[str] | None = None) -> int:
    # Tracebacks go to <data>/logs/studio.log, never the terminal; a read-only data folder is
    # swapped for a temp one for this session (the window says so).
    ensure_writable_home()
    setup_logging()
    args = list(sys.argv) if argv is None else [sys.argv[0] if sys.argv else "studio", *argv]
    app = QApplication.instance() or QApplication(args)
    app.setApplicationName("Studio")
    app.setApplicationDisplayName("Studio")
    app.setOrganizationName("Studio")
    apply_theme(app)
    context = StudioContext.create()
    window = MainWindow(context)
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook
    sys.excepthook = _report_unexpected(window)
    threading.excepthook = lambda a: logging.getLogger("studio").error(
        "unexpected error in thread %s", a.thread.name if a.thread else "?",
        exc_info=(a.exc_type, a.exc_value, a.exc_traceback))
    # Ctrl+C in the terminal closes the window cleanly (Python only sees signals between Qt events,
    # so a slow no-op timer gives it the chance).
    previous_handler = signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer(window)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)
    try:
        window.show()
        # After the window is up: offer jobs a crash or restart left behind (an info bar, no dialog).
        QTimer.singleShot(0, window.offer_unfinished)
        # Then import the Image panel's libraries in the background (engine worker thread).
        window.prewarm_when_shown()
        shown_file = os.environ.get("STUDIO_SHOWN_FILE")
        if shown_file:  # benchmarks (bench/bench_make_run.py): note when the window is up, then close
            _close_when_shown(window, Path(shown_file))
        return app.exec()
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.excepthook, threading.excepthook = previous_hook, previous_thread_hook
        heartbeat.stop()
        window.shutdown()
