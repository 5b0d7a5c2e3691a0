"""Connect a session's psygnal signal to a widget's method for as long as the widget lives.

Sessions (plain Python, :mod:`studio.core.sessions`) announce changes with psygnal signals,
emitted on the thread that feeds them — the GUI thread in the app, through the bridge.  A
widget may be deleted by Qt before the session goes away; a slot on a deleted widget must then
never run, so the connection is dropped when the widget is destroyed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject


def connect_while_alive(owner: QObject, signal: Any, slot: Callable[..., Any]) -> Callable[[], None]:
    """``signal.connect(slot)`` until ``owner`` is destroyed; returns the disconnect function."""
    signal.connect(slot)
    connected = [True]

    def disconnect(*_: object) -> None:
        if connected[0]:
            connected[0] = False
            try:
                signal.disconnect(slot)
            except (ValueError, RuntimeError):  # already gone with its emitter
                pass

    owner.destroyed.connect(disconnect)
    return disconnect
