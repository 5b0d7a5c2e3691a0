"""The lighter "does this module use PySide6?" check in PySide6's import hook."""

from __future__ import annotations

import sys
import types

import PySide6.QtCore  # noqa: F401 - installs PySide6's import hook
import pytest

from studio.qt.import_hook import lighten_pyside_import_hook


def _module(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    return module


def test_same_answers_as_pysides_own_check(tmp_path):
    feature = sys.modules.get("shibokensupport.feature")
    if feature is None or not hasattr(feature, "_mod_uses_pyside"):
        pytest.skip("this PySide6 has no feature-import check")
    assert lighten_pyside_import_hook() is True
    assert lighten_pyside_import_hook() is True  # idempotent
    check = feature._mod_uses_pyside
    assert getattr(check, "_studio_light", False)
    uses = _module(tmp_path, "uses_qt", "# é\nfrom PySide6.QtCore import QTimer\n")
    plain = _module(tmp_path, "plain", "import json\nprint('PySide2 only')\n")
    assert check(uses) is True
    assert check(plain) is False
    assert check(sys) is False  # a built-in module: PySide6's own check answers
    gone = types.ModuleType("gone")
    gone.__file__ = str(tmp_path / "missing.py")
    assert check(gone) is False
