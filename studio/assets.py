"""Where the built-in models live: ``assets/models/<name>`` beside the ``studio`` package."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def builtin_model_folder(name: str) -> Path:
    return ASSETS / "models" / name
