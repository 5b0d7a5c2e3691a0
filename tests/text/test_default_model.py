"""The embedded default model: offered first, small, quick to load, writes English."""

import json
import re
import time

import pytest

from studio.plugin_api import CancelToken, LoadOptions, Result, validate_request
from studio_text import PARAMETERS, TextPlugin, default_model_folder

FOLDER = default_model_folder()
pytestmark = pytest.mark.skipif(not (FOLDER / "config.json").is_file(), reason="embedded text model not exported")


def test_offered_first_and_small():
    choices = TextPlugin().models()
    assert choices and choices[0].source == str(FOLDER)
    weights = sum(p.stat().st_size for p in FOLDER.glob("*.safetensors"))
    assert weights < 20 * 2**20
    assert not list(FOLDER.glob("*.bin")) and not list(FOLDER.glob("*.pt"))
    config = json.loads((FOLDER / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    card = (FOLDER / "README.md").read_text()
    assert "Licence" in card and "perplexity" in card.lower()


def test_loads_quickly_and_writes_words():
    import torch  # noqa: F401 - import cost is not the model's

    plugin = TextPlugin()
    plugin.load(str(FOLDER), LoadOptions(device="cpu"), lambda m: None)  # warm the imports
    start = time.perf_counter()
    model = plugin.load(str(FOLDER), LoadOptions(device="cpu"), lambda m: None)
    assert time.perf_counter() - start < 5.0  # about 0.1 s on an idle machine
    request = validate_request(PARAMETERS, {"prompt": "It was", "max_new_tokens": 60, "seed": 3,
                                            "temperature": 0.7, "top_k": 40, "top_p": 0.9}, "notebook")
    result = [e for e in model.run(request, CancelToken()) if isinstance(e, Result)][0]
    words = re.findall(r"[A-Za-z]+", result.artifacts[0].text)
    assert len(words) >= 10
    common = {"the", "and", "of", "to", "a", "her", "she", "was", "in", "it", "i", "not", "be", "he", "that",
              "his", "had", "as", "you", "for", "with", "is", "but", "have", "my", "at", "so", "by", "all"}
    assert sum(w.lower() in common for w in words) >= 3
