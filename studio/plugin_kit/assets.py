"""Where the built-in models live: ``assets/models/<name>`` beside the ``studio`` package (a source checkout)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def builtin_model_folder(name: str) -> Path:
    return ASSETS / "models" / name
