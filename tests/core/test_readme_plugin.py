"""The README's plugin example must stay a working plugin."""

import re
from pathlib import Path

from studio.core.context import StudioContext
from studio.core.jobs import JobSpec, JobState
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio.plugin_api import Partial

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_plugin_runs_through_the_engine(tmp_path):
    block = re.search(r"```python\n# my_plugin.py\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "my_plugin.py", "exec"), namespace)
    registry = Registry()
    entry = registry.add("shout", namespace["ShoutPlugin"])
    assert entry.ok, entry.error
    context = StudioContext.create(Settings(output_dir=str(tmp_path)), registry)
    try:
        pieces = []
        context.engine.subscribe(lambda job, e: pieces.append(e.text) if isinstance(e, Partial) else None)
        job = context.engine.submit(JobSpec("shout", "builtin", {"prompt": "hello plugin world"}))
        assert job.wait(10) and job.state is JobState.DONE
        assert "".join(pieces) == "HELLO PLUGIN WORLD "
        assert job.saved[0].read_text() == "HELLO PLUGIN WORLD"
    finally:
        context.close()


def test_readme_plugin_passes_the_plugin_author_test_kit():
    from studio.plugin_kit.testing import check_plugin

    block = re.search(r"```python\n# my_plugin.py\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "my_plugin.py", "exec"), namespace)
    report = check_plugin(namespace["ShoutPlugin"](), source="builtin", request={"prompt": "hello plugin world"})
    assert report.result is not None and report.result.artifacts[0].text == "HELLO PLUGIN WORLD"
