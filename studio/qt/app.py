"""``run_gui``: the application object, the studio context and the main window."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from studio.core.context import StudioContext
from studio.qt.main_window import MainWindow
from studio.qt.theme import apply_theme


def run_gui(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[:1] if argv is None else [sys.argv[0], *argv])
    app = QApplication.instance() or QApplication(args)
    app.setApplicationName("Studio")
    app.setApplicationDisplayName("Studio")
    app.setOrganizationName("Studio")
    apply_theme(app)
    context = StudioContext.create()
    window = MainWindow(context)
    try:
        window.show()
        # After the window is up: offer jobs a crash or restart left behind (an info bar, no dialog).
        QTimer.singleShot(0, window.offer_unfinished)
        return app.exec()
    finally:
        window.shutdown()
