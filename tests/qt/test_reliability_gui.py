"""The window's side of the one error path: start-up notices and unexpected errors in the info
bar as one sentence, tracebacks in the log file only."""

from __future__ import annotations

import sys


def test_a_damaged_history_is_said_in_the_info_bar(make_window, studio_home):
    (studio_home / "history.sqlite").write_bytes(b"garbage, not SQLite" * 50)
    window = make_window()
    assert window.offer_unfinished() == []
    text = window.info_bar.text()
    assert window.info_bar.isVisible() and "history" in text and "moved to history.sqlite.broken-" in text
    assert list(studio_home.glob("history.sqlite.broken-*"))


def test_an_exception_in_a_slot_is_one_sentence_and_a_logged_traceback(make_window, studio_home, capsys):
    from studio.core.logs import setup_logging
    from studio.qt.app import _report_unexpected

    log = setup_logging(studio_home / "logs" / "studio.log")
    window = make_window()
    hook = _report_unexpected(window)
    try:
        raise RuntimeError("a widget fell over")
    except RuntimeError:
        hook(*sys.exc_info())
    text = window.info_bar.text()
    assert text == f"Something went wrong: a widget fell over (details in {log})."
    assert "Traceback" in log.read_text() and "a widget fell over" in log.read_text()
    assert "Traceback" not in capsys.readouterr().err
