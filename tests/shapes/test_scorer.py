"""ShapeEval scorer agreement with ground truth on renders (>= 99%)."""
import numpy as np

from studio.shapes import scorer, suite, world


def test_scorer_agreement_discrete():
    rng = np.random.default_rng(1234)
    ok = tot = 0
    for _ in range(300):
        sc = world.sample_scene(rng)
        m = scorer.match_scene(scorer.read_image(world.render(sc)), sc)
        ok += sum(m.values())
        tot += len(m)
    assert ok / tot >= 0.99, ok / tot


def test_scorer_continuous_readback():
    rng = np.random.default_rng(99)
    for _ in range(100):
        sc, f = world.sample_continuous_scene(rng)
        r = scorer.read_image(world.render(sc))
        assert len(r.objects) == 1
        o = r.objects[0]
        assert abs(o.cx - f["x"]) < 1.0 and abs(o.cy - f["y"]) < 1.0
        assert abs(o.half - f["half"]) < 0.6
        assert abs(o.hue - f["hue"]) < 0.02
        assert o.shape == f["shape"] and r.background == f["background"]


def test_suite_on_ground_truth_is_perfect():
    items = suite.build_suite(8, seed=3)
    assert all(world.is_heldout(it.scene) for it in items)
    res = suite.score_suite(items, [world.render(it.scene) for it in items])
    assert min(res["metrics"].values()) >= 0.99, res


def test_scorer_noise_robust():
    rng = np.random.default_rng(5)
    nrng = np.random.default_rng(6)
    ok = tot = 0
    for _ in range(100):
        sc = world.sample_scene(rng)
        img = world.render(sc).astype(np.int16) + nrng.normal(0, 8, (64, 64, 3)).astype(np.int16)
        m = scorer.match_scene(scorer.read_image(np.clip(img, 0, 255).astype(np.uint8)), sc)
        ok += sum(m.values())
        tot += len(m)
    assert ok / tot >= 0.97, ok / tot
