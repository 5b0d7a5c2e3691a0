"""Dynamic prompts: ``{red|green|blue}`` choices and ``__name__`` wildcards, resolved from a seed.

* ``{a|b|c}`` picks one option; options may hold more braces and wildcards (nested).
* ``__name__`` picks one line of ``<wildcards folder>/name.txt`` (blank lines and ``#`` comments
  skipped; ``name`` may contain ``/`` for sub-folders); a line may itself hold syntax.
* ``\\{``, ``\\}`` and ``\\|`` are literal characters.

Resolution is reproducible: the same template, seed and wildcard files give the same prompt
(a private ``random.Random(seed)``, options taken left to right), so an image's seed is enough to
make it again; the metadata keeps both the template and the resolved prompt.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

MAX_DEPTH = 20  # a wildcard that names itself stops here instead of looping
_WILDCARD = re.compile(r"__([A-Za-z0-9_\-./ ]+?)__")


class DynamicPromptError(ValueError):
    """A template that cannot be resolved; the message is a sentence for the user."""


def is_dynamic(template: str) -> bool:
    return _has_unescaped(template, "{") or bool(_WILDCARD.search(template))


def _has_unescaped(text: str, char: str) -> bool:
    i = text.find(char)
    while i != -1:
        if i == 0 or text[i - 1] != "\\":
            return True
        i = text.find(char, i + 1)
    return False


class WildcardFiles:
    """The ``name.txt`` files of one folder, read once each."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None
        self._cache: dict[str, list[str]] = {}

    def options(self, name: str) -> list[str]:
        name = name.strip()
        if name not in self._cache:
            if self.folder is None:
                raise DynamicPromptError(f"Wildcard __{name}__ has no wildcards folder to come from.")
            path = (self.folder / f"{name}.txt").resolve()
            if self.folder.resolve() not in path.parents:
                raise DynamicPromptError(f"Wildcard __{name}__ points outside the wildcards folder.")
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                raise DynamicPromptError(f"Wildcard __{name}__: no file {path.name} in {self.folder}.") from None
            lines = [line.strip() for line in text.splitlines()]
            self._cache[name] = [line for line in lines if line and not line.startswith("#")]
            if not self._cache[name]:
                raise DynamicPromptError(f"Wildcard file {path} has no lines to choose from.")
        return self._cache[name]


def resolve(template: str, seed: int, wildcards: WildcardFiles | None = None) -> str:
    """The prompt ``template`` gives for ``seed`` (templates without syntax come back unchanged)."""
    if not is_dynamic(template):
        return template
    rng = random.Random(int(seed))
    return _expand(template, rng, wildcards or WildcardFiles(None), 0)


def _expand(text: str, rng: random.Random, files: WildcardFiles, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise DynamicPromptError("The prompt's choices or wildcards nest too deep (a wildcard that uses itself?).")
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}|":
            out.append(text[i:i + 2])  # kept escaped until the very end
            i += 2
        elif ch == "{":
            end, options = _choices(text, i)
            pick = options[rng.randrange(len(options))]
            out.append(_expand(pick, rng, files, depth + 1))
            i = end + 1
        elif text.startswith("__", i) and (match := _WILDCARD.match(text, i)):
            lines = files.options(match.group(1))
            out.append(_expand(lines[rng.randrange(len(lines))], rng, files, depth + 1))
            i = match.end()
        else:
            out.append(ch)
            i += 1
    joined = "".join(out)
    return _unescape(joined) if depth == 0 else joined


def _choices(text: str, start: int) -> tuple[int, list[str]]:
    """Index of the brace closing ``text[start]`` and the top-level options inside."""
    level, i, begin = 0, start, start + 1
    options: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            level += 1
        elif ch == "}":
            level -= 1
            if level == 0:
                options.append(text[begin:i])
                return i, options
        elif ch == "|" and level == 1:
            options.append(text[begin:i])
            begin = i + 1
        i += 1
    raise DynamicPromptError(f"The prompt has a '{{' with no closing '}}': {text[start:start + 40]!r}.")


def _unescape(text: str) -> str:
    return text.replace("\\{", "{").replace("\\}", "}").replace("\\|", "|")


__all__ = ["DynamicPromptError", "WildcardFiles", "is_dynamic", "resolve"]
