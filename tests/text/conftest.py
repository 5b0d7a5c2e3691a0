import threading

import pytest

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.settings import Settings
from tests.text import tiny_lms


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Folders of tiny random-weight models: gpt2 (no chat template, no EOS), llama (Llama-3 style
    template), qwen2 (ChatML template)."""
    root = tmp_path_factory.mktemp("tiny-lms")
    models = {kind: tiny_lms.build(kind, root / kind) for kind in ("gpt2", "llama", "qwen2")}
    # The Stop tests need a reply that cannot finish before Stop lands, however busy the machine:
    # a 128-token context fills in tens of milliseconds, a 4096-token one takes seconds.
    models["gpt2-long"] = tiny_lms.build("gpt2", root / "gpt2-long", context=4096)
    return models


@pytest.fixture
def make_context(tmp_path):
    made = []

    def make():
        from studio_text import TextPlugin

        registry = Registry()
        registry.add("text", TextPlugin)
        context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def context(make_context):
    return make_context()


def record(engine):
    events = []
    lock = threading.Lock()

    def listen(job, event):
        with lock:
            events.append((job, event))

    engine.subscribe(listen)
    return events
