from studio.core.metadata import format_parameters, parse_parameters

A1111_SAMPLE = """a red circle, masterpiece
on a black background
Negative prompt: blurry, lowres
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.75, Lora hashes: "foo: abc123, bar: def456", Version: v1.9.4"""


def test_format_matches_a1111_layout():
    text = format_parameters({
        "prompt": "a red circle", "negative_prompt": "blurry", "steps": 20, "sampler": "Euler a",
        "cfg_scale": 7.0, "seed": 42, "width": 64, "height": 64, "model_hash": "0123456789",
        "model": "shapes-sd", "mode": "txt2img", "denoising_strength": 0.5,
    })
    assert text.splitlines() == [
        "a red circle",
        "Negative prompt: blurry",
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 0123456789, "
        "Model: shapes-sd, Mode: txt2img",
    ]


def test_no_negative_line_when_empty_and_quoting():
    text = format_parameters({"prompt": "p", "negative_prompt": "", "steps": 5, "sampler": "a, b", "seed": 1})
    assert text == 'p\nSteps: 5, Sampler: "a, b", Seed: 1'


def test_parse_real_a1111_text():
    parsed = parse_parameters(A1111_SAMPLE)
    assert parsed["prompt"] == "a red circle, masterpiece\non a black background"
    assert parsed["negative_prompt"] == "blurry, lowres"
    assert parsed["steps"] == 20 and parsed["seed"] == 1234 and parsed["cfg_scale"] == 7.5
    assert parsed["sampler"] == "DPM++ 2M" and parsed["schedule_type"] == "Karras"
    assert (parsed["width"], parsed["height"]) == (512, 768)
    assert parsed["lora_hashes"] == "foo: abc123, bar: def456"
    assert parsed["Version"] == "v1.9.4"
    assert parsed["denoising_strength"] == 0.75


def test_round_trip():
    params = {"prompt": "x: y", "negative_prompt": "n", "steps": 3, "sampler": "DDIM", "cfg_scale": 2.5,
              "seed": 7, "width": 32, "height": 48, "model": "m"}
    parsed = parse_parameters(format_parameters(params))
    for key, value in params.items():
        assert parsed[key] == value
