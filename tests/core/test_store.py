import threading

from PIL import Image

from studio.core.audio_files import read_wav_info
from studio.core.history import History
from studio.core.metadata import read_png_parameters
from studio.core.store import OutputStore, slugify
from studio.plugin_api import Artifact, Kind


def _artifact(prompt: str, seed: int = 5) -> Artifact:
    return Artifact(Kind.IMAGE, image=Image.new("RGB", (8, 8), "red"), seed=seed,
                    parameters={"prompt": prompt, "steps": 3, "seed": seed, "width": 8, "height": 8})


def test_names_counter_seed_slug(tmp_path):
    store = OutputStore(tmp_path)
    first = store.save(_artifact("A Red Circle!"))
    second = store.save(_artifact("A Red Circle!", seed=6))
    assert first.name == "00000-5-a-red-circle.png"
    assert second.name == "00001-6-a-red-circle.png"
    assert first.parent == store.day_folder()
    assert read_png_parameters(str(first))["prompt"] == "A Red Circle!"


def test_prompt_cannot_escape_output_folder(tmp_path):
    store = OutputStore(tmp_path / "out")
    for evil in ("../../etc/passwd", "..\\..\\windows", "/abs/path", "C:\\x", "\0null", "..", ".hidden"):
        path = store.save(_artifact(evil))
        assert path.resolve().parent == store.day_folder().resolve()
        assert "/" not in path.name and "\\" not in path.name and ".." not in path.name
    assert slugify("") == "untitled"
    assert len(slugify("x" * 500)) <= 60


def test_no_temp_files_left_and_concurrent_saves_unique(tmp_path):
    store = OutputStore(tmp_path)
    paths = []
    threads = [threading.Thread(target=lambda i=i: paths.append(store.save(_artifact("p", i)))) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(paths)) == 8
    assert not [p for p in store.day_folder().iterdir() if p.name.endswith(".tmp")]


def test_wav_has_metadata(tmp_path):
    import numpy as np

    store = OutputStore(tmp_path)
    artifact = Artifact(Kind.MUSIC, audio=np.zeros((100, 2), np.float32), sample_rate=8000, seed=3,
                        parameters={"prompt": "slow chorale", "seed": 3})
    path = store.save(artifact)
    info = read_wav_info(path.read_bytes())
    assert info["INAM"] == "slow chorale" and '"seed": 3' in info["ICMT"]
    import wave

    with wave.open(str(path)) as reader:
        assert reader.getnframes() == 100 and reader.getnchannels() == 2


def test_history_survives_reopen(tmp_path):
    db = tmp_path / "h.sqlite"
    history = History(db)
    history.add_job("j1", "toy", "image", "m", {"request": {"prompt": "x"}})
    history.set_state("j1", "running")
    history.add_output("j1", "image", tmp_path / "a.png", 3, {"prompt": "x"})
    history.close()
    reopened = History(db)
    assert [r.id for r in reopened.unfinished()] == ["j1"]
    assert reopened.outputs("image")[0].parameters == {"prompt": "x"}
    reopened.set_state("j1", "done")
    assert reopened.unfinished() == []
