"""A1111 emphasis parsing and dynamic prompts (pure Python)."""

from __future__ import annotations

import pytest

from studio.plugin_kit.prompts import attention, dynamic
from studio.plugin_kit.prompts.attention import Fragment


def weights(prompt: str) -> list[tuple[str, float]]:
    return [(f.text, round(f.weight, 4)) for f in attention.parse(prompt)]


def test_explicit_weight_and_nesting():
    assert weights("a (red:1.5) circle") == [("a ", 1.0), ("red", 1.5), (" circle", 1.0)]
    assert weights("(red)") == [("red", 1.1)]
    assert weights("[red]") == [("red", round(1 / 1.1, 4))]
    assert weights("((red))") == [("red", 1.21)]
    assert weights("(a [b] c:1.2)") == [("a ", 1.2), ("b", round(1.2 / 1.1, 4)), (" c", 1.2)]


def test_weight_one_reads_as_plain_text():
    assert attention.parse("a (red:1.0) circle") == [Fragment("a red circle", 1.0)]


def test_escapes_unclosed_and_stray_brackets():
    assert weights(r"\(not weighted\) x") == [("(not weighted) x", 1.0)]
    assert weights("open (x") == [("open ", 1.0), ("x", 1.1)]
    assert weights("x) y: 3") == [("x) y: 3", 1.0)]
    assert not attention.has_syntax("time: 12:30, x) y")
    assert attention.has_syntax(r"\(x\)")


def test_break_splits():
    parts = attention.parse("a cat BREAK (a dog:1.2)")
    assert [p.is_break for p in parts] == [False, True, False]
    assert parts[0].text == "a cat" and parts[2] == Fragment("a dog", 1.2)
    assert attention.plain_text(parts) == "a cat a dog"
    assert not attention.parse("BREAKFAST")[0].is_break


def test_choices_reproduce_with_the_seed():
    template = "a {red|green|blue} {circle|square}"
    first = [dynamic.resolve(template, seed) for seed in range(20)]
    assert first == [dynamic.resolve(template, seed) for seed in range(20)]
    assert len(set(first)) > 3  # the seed really chooses
    assert all(p.split()[1] in ("red", "green", "blue") for p in first)


def test_wildcards_from_files_nested_and_escaped(tmp_path):
    (tmp_path / "animal.txt").write_text("# animals\ncat\n\ndog with a {hat|scarf}\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "place.txt").write_text("in __animal__ land\n", encoding="utf-8")
    files = dynamic.WildcardFiles(tmp_path)
    seen = {dynamic.resolve(r"__animal__, __sub/place__ \{kept\}", seed, files) for seed in range(30)}
    assert all(p.endswith("land {kept}") for p in seen)
    assert any(p.startswith("dog with a ") for p in seen) and any(p.startswith("cat,") for p in seen)
    again = dynamic.resolve("__animal__ __sub/place__", 7, dynamic.WildcardFiles(tmp_path))
    assert again == dynamic.resolve("__animal__ __sub/place__", 7, files)


def test_plain_prompt_unchanged_and_bad_templates_explain(tmp_path):
    assert dynamic.resolve("a (red:1.2) circle", 3) == "a (red:1.2) circle"
    with pytest.raises(dynamic.DynamicPromptError, match="no file missing.txt"):
        dynamic.resolve("__missing__", 0, dynamic.WildcardFiles(tmp_path))
    with pytest.raises(dynamic.DynamicPromptError, match="no closing"):
        dynamic.resolve("{a|b", 0)
    with pytest.raises(dynamic.DynamicPromptError, match="outside"):
        dynamic.resolve("__../secret__", 0, dynamic.WildcardFiles(tmp_path / "sub"))
    (tmp_path / "loop.txt").write_text("again __loop__\n", encoding="utf-8")
    with pytest.raises(dynamic.DynamicPromptError, match="nest too deep"):
        dynamic.resolve("__loop__", 0, dynamic.WildcardFiles(tmp_path))
