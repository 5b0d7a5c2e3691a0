"""``studio text``: streams to stdout, statistics to stderr, exit 2 + one line for bad input."""

import pytest

from studio.cli import main


@pytest.mark.parametrize("args, message", [
    (["--max-new-tokens", "-5"], "Max new tokens must be at least 1"),
    (["--max-new-tokens", "0"], "Max new tokens must be at least 1"),
    (["--temperature", "-0.1"], "Temperature must be at least 0"),
    (["--top-p", "2"], "Top-p must be at most 1"),
    (["--temperature", "nan"], "finite"),
    (["--model", "/no/such/model"], "model not found: /no/such/model"),
    (["--model", "nobody-here/not-cached"], "allow download"),
    (["--system", "x"], "--system needs --chat"),
    (["--seed", "many"], "invalid int value"),
])
def test_bad_input_exit_2_one_line(args, message, capsys):
    code = main(["text", "hello", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_folder_that_is_not_a_model(tmp_path, capsys):
    assert main(["text", "hello", "--model", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_streams_text_and_same_seed_same_text(tiny_models, capsys):
    args = ["text", "The quick", "--model", str(tiny_models["gpt2"]), "--max-new-tokens", "12", "--seed", "9",
            "--temperature", "1.0", "--top-k", "0", "--top-p", "1", "--min-p", "0", "--repetition-penalty", "1"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert main(args) == 0
    second = capsys.readouterr()
    assert first.out == second.out and first.out.strip()
    stats = first.err.strip().splitlines()[-1]
    assert "tokens 12" in stats and "tok/s" in stats and "seed 9" in stats and "stop: max tokens" in stats
    assert main([*args[:-12], "--max-new-tokens", "12", "--seed", "10", "--temperature", "1.0"]) == 0
    assert capsys.readouterr().out != first.out


def test_chat_with_system_prompt(tiny_models, capsys):
    code = main(["text", "Hi", "--model", str(tiny_models["llama"]), "--chat", "--system", "Be brief.",
                 "--max-new-tokens", "5", "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "seed 1" in captured.err
