import math

import pytest

from studio.plugin_api import Cancelled, CancelToken, Param, ParamError, ParamType, validate_request


def test_int_range_and_messages():
    steps = Param("steps", ParamType.INT, 20, minimum=1, maximum=150)
    assert steps.validate("30") == 30
    with pytest.raises(ParamError, match="Steps must be at least 1"):
        steps.validate(0)
    with pytest.raises(ParamError, match="whole number"):
        steps.validate(2.5)
    with pytest.raises(ParamError, match="whole number"):
        steps.validate(True)


def test_float_rejects_nan_and_inf():
    cfg = Param("cfg_scale", ParamType.FLOAT, 7.0, label="CFG scale", minimum=0, maximum=30)
    for bad in (math.nan, "nan", math.inf):
        with pytest.raises(ParamError, match="finite"):
            cfg.validate(bad)
    assert cfg.validate("7.5") == 7.5


def test_seed_random_and_bounds():
    seed = Param("seed", ParamType.SEED)
    assert seed.validate(None) is None
    assert seed.validate("") is None
    assert seed.validate(-1) is None
    assert seed.validate("42") == 42
    with pytest.raises(ParamError):
        seed.validate(2**32)


def test_size_parsing_and_multiple():
    size = Param("size", ParamType.SIZE, (512, 512), multiple_of=8, maximum=2048)
    assert size.validate("64x48") == (64, 48)
    assert size.validate("64×64") == (64, 64)
    assert size.validate([32, 32]) == (32, 32)
    with pytest.raises(ParamError, match="multiple of 8"):
        size.validate("65x64")
    with pytest.raises(ParamError, match="positive"):
        size.validate("0x64")
    with pytest.raises(ParamError, match="WIDTHxHEIGHT"):
        size.validate("64")


def test_choice_and_unknown_keys():
    params = [Param("scheduler", ParamType.CHOICE, "Euler", choices=("Euler", "DDIM")),
              Param("strength", ParamType.FLOAT, 0.5, modes=("img2img",))]
    assert validate_request(params, {"scheduler": "DDIM"}, mode="txt2img") == {"mode": "txt2img", "scheduler": "DDIM"}
    assert validate_request(params, {}, mode="img2img")["strength"] == 0.5
    with pytest.raises(ParamError, match="one of"):
        validate_request(params, {"scheduler": "nope"})
    with pytest.raises(ParamError, match="Unknown parameter"):
        validate_request(params, {"shceduler": "DDIM"})


def test_cancel_token_interrupt_keeps_partial():
    token = CancelToken()
    assert not token.is_set
    token.interrupt()
    assert token.is_set and token.keep_partial
    with pytest.raises(Cancelled):
        token.raise_if_set()
    token = CancelToken()
    token.cancel()
    assert token.is_set and not token.keep_partial


def test_api_version_is_semantic():
    from studio.plugin_api import API_VERSION, api_compatible

    major = API_VERSION.split(".")[0]
    assert api_compatible(int(major)) is None            # old plugins said the integer 1
    assert api_compatible(f"{major}.0") is None          # built for an older minor: loads
    assert api_compatible(API_VERSION) is None
    assert "newer" in api_compatible(f"{major}.99")      # needs a minor we do not have
    assert "built for plugin API" in api_compatible(f"{int(major) + 1}.0")
    assert "not a version" in api_compatible("banana")
    assert "not a version" in api_compatible(None)
