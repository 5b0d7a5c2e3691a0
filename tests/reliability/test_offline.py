"""Downloads off means no connection at all: a hub-like id with downloads off must not open a
socket or look up a name, for image, text, music and latent, in-process and from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from tests.reliability.conftest import SOCKET_GUARD

ROOT = Path(__file__).resolve().parents[2]
HUB_ID = "someone/not-cached-model"
COMMANDS = {
    "image": ["image", "x", "--model", HUB_ID],
    "text": ["text", "hi", "--model", HUB_ID],
    "music": ["music", "x", "--model", HUB_ID],
    "latent": ["latent", "directions", "--model", HUB_ID],
}


@pytest.fixture
def user_online(monkeypatch, tmp_path):
    """As a user who never set HF_HUB_OFFLINE (the test session sets it), with an empty hub cache."""
    import huggingface_hub.constants as hub_constants
    from huggingface_hub.utils import _detect_agent

    import studio.core.hub_offline as hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hub_offline, "_USER_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hub_constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf" / "agents.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)  # headers would fetch it from the hub
    for name in ("diffusers.utils.hub_utils", "diffusers.loaders.lora_base", "diffusers.models.attention_dispatch"):
        if name in sys.modules:
            monkeypatch.setattr(sys.modules[name], "HF_HUB_OFFLINE", False)


def test_the_guard_does_catch_the_hub_when_it_is_online(user_online, no_network):
    """Control: without offline mode the hub library really does try the network here."""
    from huggingface_hub import hf_hub_download

    with pytest.raises(Exception):  # noqa: B017 - whatever the hub library raises once the guard blocks it
        hf_hub_download(HUB_ID, "config.json")
    assert no_network, "the hub library made no attempt; the guard would prove nothing"


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_downloads_off_makes_no_connection(kind, user_online, no_network, capsys):
    code = main(COMMANDS[kind])
    err = capsys.readouterr().err
    assert no_network == [], no_network
    assert code == 2, err  # "not on this computer; allow downloads..."
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "download" in err.lower()
    assert os.environ.get("HF_HUB_OFFLINE") is None  # restored after the job


@pytest.mark.parametrize("kind", ["text"])
def test_downloads_off_from_the_cli_in_a_fresh_process(kind, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), STUDIO_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    script = SOCKET_GUARD + "\nimport sys\nfrom studio.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    done = subprocess.run([sys.executable, "-c", script, *COMMANDS[kind]], env=env, capture_output=True, text=True,
                          timeout=180)
    assert "NETWORK USED" not in done.stderr and done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
