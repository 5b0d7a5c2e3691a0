"""The text plugin through the studio's own loader and engine, on tiny real-architecture models."""

import time

import pytest

from studio.core.jobs import JobSpec, JobState, StateChanged
from studio.plugin_api import CancelToken, LoadOptions, Log, ParamError, Partial, Progress, Result, validate_request
from studio_text import MODES, PARAMETERS, TextPlugin
from studio_text.sources import resolve
from tests.text.conftest import record


def _load(folder):
    messages = []
    model = TextPlugin().load(str(folder), LoadOptions(), messages.append)
    return model, messages


def _run(model, mode, cancel=None, **request):
    clean = validate_request(PARAMETERS, request, mode)
    return list(model.run(clean, cancel or CancelToken()))


@pytest.mark.parametrize("kind, arch", [("gpt2", "GPT2LMHeadModel"), ("llama", "LlamaForCausalLM"),
                                        ("qwen2", "Qwen2ForCausalLM")])
def test_loads_each_family_and_streams_in_order(tiny_models, kind, arch):
    model, messages = _load(tiny_models[kind])
    assert type(model.model).__name__ == arch
    assert any("tokenizer" in m for m in messages) and any("weights" in m for m in messages)
    assert model.device == "cpu" and model.memory_bytes > 0 and model.context_length == 128
    events = _run(model, "notebook", prompt="The quick brown", max_new_tokens=12, seed=1, temperature=1.0)
    assert isinstance(events[-1], Result)
    streamed = "".join(e.text for e in events if isinstance(e, Partial))
    result = events[-1]
    assert streamed == result.artifacts[0].text  # partials carry only the new text, in order
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == sorted(steps) and steps[-1] == result.info["tokens"]
    assert sum(e.tokens for e in events if isinstance(e, Partial)) == result.info["tokens"]
    assert result.artifacts[0].seed == 1 == result.info["seed"]
    assert result.info["time_to_first_token"] > 0 and result.info["tokens_per_second"] > 0


def test_seed_reproducible_and_random_seed_reported(tiny_models):
    model, _ = _load(tiny_models["gpt2"])
    first = _run(model, "notebook", prompt="Hello", max_new_tokens=16, seed=42, temperature=1.0)[-1]
    again = _run(model, "notebook", prompt="Hello", max_new_tokens=16, seed=42, temperature=1.0)[-1]
    other = _run(model, "notebook", prompt="Hello", max_new_tokens=16, seed=43, temperature=1.0)[-1]
    assert first.artifacts[0].text == again.artifacts[0].text
    assert first.artifacts[0].text != other.artifacts[0].text
    random_seed = _run(model, "notebook", prompt="Hello", max_new_tokens=4, seed=-1)[-1]
    assert isinstance(random_seed.info["seed"], int) and 0 <= random_seed.info["seed"] < 2**32


def test_greedy_ignores_seed(tiny_models):
    model, _ = _load(tiny_models["qwen2"])
    a = _run(model, "notebook", prompt="Hello", max_new_tokens=10, seed=1, temperature=0)[-1]
    b = _run(model, "notebook", prompt="Hello", max_new_tokens=10, seed=2, temperature=0)[-1]
    assert a.artifacts[0].text == b.artifacts[0].text


def test_max_tokens_stop_reason(tiny_models):
    model, _ = _load(tiny_models["gpt2"])
    result = _run(model, "notebook", prompt="A", max_new_tokens=7, seed=3)[-1]
    assert result.info["tokens"] == 7 and result.info["stop_reason"] == "max tokens"


def test_chat_template_rendering(tiny_models):
    llama, _ = _load(tiny_models["llama"])
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = llama.render_chat(conversation, continue_last=False)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    # Continue: the final assistant message is left open, no end-of-turn token after it.
    cont = llama.render_chat(conversation + [{"role": "assistant", "content": "Hello th"}], continue_last=True)
    assert cont.endswith("<|start_header_id|>assistant<|end_header_id|>\n\nHello th")
    qwen, _ = _load(tiny_models["qwen2"])
    assert qwen.render_chat(conversation, False) == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                                                     "Hi<|im_end|>\n<|im_start|>assistant\n")
    # GPT-2 has no template: the plain fallback is used.
    gpt2, _ = _load(tiny_models["gpt2"])
    assert not gpt2.has_chat_template
    assert gpt2.render_chat(conversation, False) == "Be brief.\n\nUser: Hi\nAssistant:"


def test_chat_run_uses_system_prompt_and_template(tiny_models):
    model, _ = _load(tiny_models["qwen2"])
    events = _run(model, "chat", messages=[{"role": "user", "content": "Hello there"}], system="Be kind.",
                  max_new_tokens=5, seed=7)
    result = events[-1]
    expected = model.encode(model.render_chat([{"role": "system", "content": "Be kind."},
                                               {"role": "user", "content": "Hello there"}], False), True)
    assert result.info["prompt_tokens"] == len(expected)
    assert result.artifacts[0].parameters["prompt"] == "Hello there"


def test_stop_strings_end_generation_and_are_not_kept(tiny_models):
    model, _ = _load(tiny_models["gpt2"])
    free = _run(model, "notebook", prompt="The", max_new_tokens=30, seed=5, temperature=1.0)[-1].artifacts[0].text
    stop = free[len(free) // 2:len(free) // 2 + 2]
    assert stop.strip()
    events = _run(model, "notebook", prompt="The", max_new_tokens=30, seed=5, temperature=1.0, stop=[stop])
    result = events[-1]
    text = result.artifacts[0].text
    assert text == free[:free.index(stop)]
    assert "".join(e.text for e in events if isinstance(e, Partial)) == text
    assert result.info["stop_reason"] == "stop string"


def test_prompt_trimmed_to_context_with_notice(tiny_models):
    model, _ = _load(tiny_models["llama"])  # context 128 tokens
    long_turns = []
    for i in range(12):
        long_turns.append({"role": "user", "content": f"Question {i}: the quick brown fox jumps over the lazy dog."})
        long_turns.append({"role": "assistant", "content": f"Answer {i}: hello there, how are you today?"})
    long_turns.append({"role": "user", "content": "Last question?"})
    events = _run(model, "chat", messages=long_turns, system="Be brief.", max_new_tokens=8, seed=1)
    result = events[-1]
    notices = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert notices and "oldest message" in notices[0]
    assert result.info["trimmed"] == notices[0]
    assert result.info["prompt_tokens"] + 8 <= 128
    # Notebook: the start of a long document is dropped.
    doc = "It is a truth universally acknowledged. " * 40
    result = _run(model, "notebook", prompt=doc, max_new_tokens=8, seed=1)[-1]
    assert "first" in result.info["trimmed"] and result.info["prompt_tokens"] == 120


def test_stop_through_engine_keeps_text_within_one_token(context, tiny_models):
    events = record(context.engine)
    seen = {"tokens": 0, "at_stop": None}

    def stop_after_three(job, event):
        if isinstance(event, Partial) and seen["at_stop"] is None:
            seen["tokens"] += event.tokens
            if seen["tokens"] >= 3:
                seen["at_stop"] = seen["tokens"]
                context.engine.interrupt(job.id)

    context.engine.subscribe(stop_after_three)
    job = context.engine.submit(JobSpec("text", str(tiny_models["gpt2"]), mode="notebook", save=False,
                                        request={"prompt": "The", "max_new_tokens": 100, "seed": 1}))
    assert job.wait(60)
    assert job.state is JobState.INTERRUPTED
    result = job.result
    assert result.interrupted and result.info["stop_reason"] == "stopped"
    # The stopping criterion is checked after every token: at most one more token is made
    # after Stop (plus any already made but not yet delivered when Stop was pressed).
    assert result.info["tokens"] <= seen["at_stop"] + 2, (result.info["tokens"], seen["at_stop"])
    streamed = "".join(e.text for j, e in events if j is job and isinstance(e, Partial))
    assert streamed == result.artifacts[0].text and streamed


def test_cancel_drops_everything(context, tiny_models):
    def cancel_early(job, event):
        if isinstance(event, Partial):
            context.engine.cancel(job.id)

    context.engine.subscribe(cancel_early)
    job = context.engine.submit(JobSpec("text", str(tiny_models["gpt2"]), mode="notebook", save=False,
                                        request={"prompt": "The", "max_new_tokens": 100, "seed": 1}))
    assert job.wait(60)
    assert job.state is JobState.CANCELLED and job.result is None


def test_load_action_and_text_saved_to_store(context, tiny_models):
    events = record(context.engine)
    load = context.engine.submit(JobSpec("text", str(tiny_models["qwen2"]), action="load"))
    assert load.wait(60) and load.state is JobState.DONE
    assert [m.source for m in context.engine.residency.loaded()] == [str(tiny_models["qwen2"])]
    job = context.engine.submit(JobSpec("text", str(tiny_models["qwen2"]), mode="notebook",
                                        request={"prompt": "Hello", "max_new_tokens": 4, "seed": 3}))
    assert job.wait(60) and job.state is JobState.DONE
    assert job.saved and job.saved[0].read_text() == job.result.artifacts[0].text
    states = [e.state for j, e in events if j is job and isinstance(e, StateChanged)]
    assert states == [JobState.QUEUED, JobState.LOADING, JobState.RUNNING, JobState.DONE]


@pytest.mark.parametrize("request_, message", [
    ({"max_new_tokens": 0}, "at least 1"),
    ({"temperature": -0.5}, "at least 0"),
    ({"top_p": 1.5}, "at most 1"),
    ({"seed": "abc"}, "whole number"),
])
def test_bad_values_rejected_at_submit(context, tiny_models, request_, message):
    with pytest.raises(ParamError, match=message):
        context.engine.submit(JobSpec("text", str(tiny_models["gpt2"]), mode="notebook",
                                      request={"prompt": "x", **request_}))


def test_bad_sources_have_clear_messages(tmp_path, tiny_models):
    with pytest.raises(FileNotFoundError, match="Model not found"):
        resolve(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        resolve(str(tmp_path / "empty"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_models["gpt2"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ValueError, match="pickle"):
        resolve(str(pickled))
    assert resolve("someone/some-model").kind == "hub"
    with pytest.raises(FileNotFoundError, match="allow download"):
        TextPlugin().load("studio-tests/no-such-model", LoadOptions(), lambda m: None)


def test_wrong_kind_of_model_is_refused(tmp_path, tiny_models):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text((tiny_models["gpt2"] / name).read_text())
    with pytest.raises(ValueError, match="not a causal language model"):
        TextPlugin().load(str(folder), LoadOptions(), lambda m: None)


def test_plugin_declares_modes_and_default_model():
    plugin = TextPlugin()
    assert tuple(plugin.modes()) == MODES == ("chat", "notebook")
    names = {p.name for p in plugin.parameters()}
    assert {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens", "seed"} <= names
    for choice in plugin.models():
        assert "built in" in choice.label


def test_entry_point_import_is_light():
    import subprocess
    import sys

    code = ("import studio_text, sys; studio_text.TextPlugin().models(); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_generation_is_fast_enough_for_tiny_models(tiny_models):
    model, _ = _load(tiny_models["gpt2"])
    start = time.perf_counter()
    _run(model, "notebook", prompt="x", max_new_tokens=20, seed=1)
    assert time.perf_counter() - start < 30


def test_contract_with_the_plugin_author_test_kit(tiny_models):
    from studio.plugin_kit.testing import check_plugin
    from studio_text import TextPlugin

    report = check_plugin(TextPlugin(), source=str(tiny_models["llama"]), mode="chat",
                          request={"messages": [{"role": "user", "content": "Hello"}], "max_new_tokens": 4,
                                   "seed": 1})
    assert report.capabilities == ["Prewarms"]
    assert report.model_capabilities == ["ModelHints", "CountsTokens", "RendersChat"]
    assert report.result is not None and report.result.artifacts[0].text is not None


def test_token_counting_and_chat_rendering_are_declared_capabilities(tiny_models):
    from studio.plugin_api import CountsTokens, ModelHints, RendersChat

    model, _ = _load(tiny_models["llama"])
    try:
        assert isinstance(model, CountsTokens) and isinstance(model, RendersChat) and isinstance(model, ModelHints)
        rendered = model.render_chat([{"role": "user", "content": "Hi there"}], False)
        assert "Hi there" in rendered and model.count_tokens(rendered) > model.count_tokens("Hi there") > 0
        assert model.modes == ("chat", "notebook") and model.defaults["max_new_tokens"] >= 16
    finally:
        model.unload()
