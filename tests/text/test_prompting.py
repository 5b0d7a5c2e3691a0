"""Pure prompt helpers: trimming, stop strings held back while streaming, incremental decoding."""

from studio_text.prompting import FALLBACK_CHAT_TEMPLATE, IncrementalDecoder, StopHoldback, clean_messages, trim_turns


def _count(messages):
    return sum(len(m["content"]) for m in messages)


def test_trim_drops_oldest_turns_in_pairs_keeping_system_and_newest():
    messages = [{"role": "system", "content": "S" * 5}]
    for i in range(4):
        messages += [{"role": "user", "content": f"u{i}" * 5}, {"role": "assistant", "content": f"a{i}" * 5}]
    messages.append({"role": "user", "content": "last"})
    trimmed = trim_turns(messages, _count, budget=30)
    assert trimmed.messages[0]["role"] == "system" and trimmed.messages[-1]["content"] == "last"
    assert trimmed.dropped % 2 == 0 and trimmed.dropped >= 2
    assert _count(trimmed.messages) <= 30
    assert trimmed.messages[1]["role"] == "user"  # still starts with a user turn after the system prompt
    # Nothing to drop: the newest message alone is over budget -> kept (the caller cuts tokens).
    alone = trim_turns([{"role": "user", "content": "x" * 100}], _count, budget=10)
    assert alone.dropped == 0 and len(alone.messages) == 1
    assert trim_turns(messages, _count, budget=10_000).dropped == 0


def test_clean_messages_rejects_bad_entries():
    import pytest

    assert clean_messages([{"role": "user", "content": 5}]) == [{"role": "user", "content": "5"}]
    with pytest.raises(ValueError, match="role"):
        clean_messages([{"content": "x"}])
    with pytest.raises(ValueError, match="unknown role"):
        clean_messages([{"role": "robot", "content": "x"}])


def test_stop_holdback_never_shows_a_stop_string():
    hold = StopHoldback(["\nUser:"])
    shown = "".join(hold.feed(piece) for piece in ["Hello", " there", "\n", "Us", "er", ": more"])
    assert shown == "Hello there" and hold.hit == "\nUser:"
    assert hold.feed("after") == "" and hold.flush() == ""
    # A partial match that turns out not to be a stop is released.
    hold = StopHoldback(["\nUser:"])
    shown = hold.feed("a\nUs") + hold.feed("ually")
    assert shown + hold.flush() == "a\nUsually"
    assert StopHoldback([]).feed("abc") == "abc"


def test_incremental_decoder_matches_full_decode_with_multibyte_text(tiny_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    text = "Café — naïve 🙂 streaming, one token at a time. 漢字"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tok)
    pieces = [decoder.push([i]) for i in ids]
    pieces.append(decoder.finish())
    assert "".join(pieces) == tok.decode(ids) == text
    assert not any("\ufffd" in p for p in pieces)  # half characters are never emitted


def test_fallback_template_renders_plain_turns(tiny_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                                    {"role": "user", "content": "Bye"}], chat_template=FALLBACK_CHAT_TEMPLATE,
                                   tokenize=False, add_generation_prompt=True)
    assert text == "User: Hi\nAssistant: Hello\nUser: Bye\nAssistant:"
