"""What a prompt becomes in one pipeline call: dynamic parts resolved from the image's seed, then
A1111 weights / BREAK / long prompts turned into prompt embeddings where the family's text encoders
allow it, or passed as plain text with a notice where they do not (never silently dropped).

Light at import: torch comes with :mod:`studio.plugin_kit.diffusion.prompt_embeds` on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.plugin_api import ParamError
from studio.plugin_kit.paths import wildcards_folder
from studio.plugin_kit.prompts import attention, dynamic

EMBED_KEYS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")


@dataclass
class PromptCall:
    kwargs: dict[str, Any] = field(default_factory=dict)  # replaces prompt / negative_prompt in the call
    params: dict[str, Any] = field(default_factory=dict)  # what the metadata records
    notices: list[str] = field(default_factory=list)


class Prompter:
    """One per run: reads wildcard files once, remembers which notices were already given."""

    def __init__(self, folder: Any = None) -> None:
        self.files = dynamic.WildcardFiles(folder if folder is not None else wildcards_folder())
        self._told: set[str] = set()

    def check(self, template: str, negative: str) -> None:
        """Resolve once with seed 0 so a bad template fails before any model work."""
        self.resolve(template, 0), self.resolve(negative, 0)

    def resolve(self, template: str, seed: int) -> str:
        try:
            return dynamic.resolve(template, seed, self.files)
        except dynamic.DynamicPromptError as exc:
            raise ParamError(str(exc)) from None

    def prepare(self, pipe: Any, template: str, negative_template: str, seed: int) -> PromptCall:
        call = PromptCall()
        prompt, negative = self.resolve(template, seed), self.resolve(negative_template, seed)
        call.params.update(prompt=prompt, negative_prompt=negative)
        if prompt != template:
            call.params["prompt_template"] = template
        if negative != negative_template:
            call.params["negative_template"] = negative_template
        syntax = attention.has_syntax(prompt) or attention.has_syntax(negative)
        tokenizer = getattr(pipe, "tokenizer", None)
        from studio.plugin_kit.diffusion import prompt_embeds

        kind = prompt_embeds.encoder_kind(pipe)
        long = kind is not None and tokenizer is not None and max(
            prompt_embeds.token_chunks(pipe, prompt), prompt_embeds.token_chunks(pipe, negative)) > 1
        if kind is not None and (syntax or long):
            call.kwargs.update(prompt_embeds.encode(pipe, prompt, negative), prompt=None, negative_prompt=None)
            return call
        if syntax:
            call.kwargs.update(prompt=attention.plain_text(attention.parse(prompt)),
                               negative_prompt=attention.plain_text(attention.parse(negative)))
            self._notice(call, f"Prompt weights, brackets and BREAK were ignored: {type(pipe).__name__}'s text "
                               f"encoders are not CLIP-only (A1111 weighting is for SD 1.x/2.x and SDXL); the "
                               f"prompt was given as plain text.")
        else:
            call.kwargs.update(prompt=prompt, negative_prompt=negative)
        return call

    def apply(self, pipe: Any, kwargs: dict[str, Any], template: str, negative_template: str,
              seed: int) -> PromptCall:
        """Put this image's prompt into the call's ``kwargs`` (in place), replacing the last image's."""
        import inspect

        call = self.prepare(pipe, template, negative_template, seed)
        for key in EMBED_KEYS:
            kwargs.pop(key, None)
        accepted = set(inspect.signature(pipe.__call__).parameters)
        # only what the call already passes (the family plan decides whether a negative prompt goes in),
        # plus the embeddings that replace the text
        kwargs.update({k: v for k, v in call.kwargs.items() if k in accepted and (k in kwargs or k in EMBED_KEYS)})
        return call

    def _notice(self, call: PromptCall, text: str) -> None:
        if text not in self._told:
            self._told.add(text)
            call.notices.append(text)


__all__ = ["PromptCall", "Prompter"]
