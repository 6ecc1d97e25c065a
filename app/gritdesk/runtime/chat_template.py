"""Check a GGUF's own chat template (`tokenizer.chat_template`) against a recipe's format.

A chat-template recipe writes its turns itself, piece by piece, so user and document text
is never parsed for special tokens. This check renders the model's Jinja template (with
jinja2's sandbox, as llama-cpp-python does) on a sample conversation and requires the very
text the recipe renders: a model with another template fails at load with both shown.
"""

from __future__ import annotations

from pathlib import Path

from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.recipes import Markup, Recipe, Text

TEMPLATE_KEY = "tokenizer.chat_template"


class _Turn:
    def __init__(self, user: str, assistant: str | None) -> None:
        self.user, self.assistant = user, assistant


_SAMPLE = (_Turn("What is 1+1?", "2"), _Turn("And 2+2?", None))


def render_gguf_template(template: str) -> str:
    """The model's template on the sample conversation, ready for the assistant's answer."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    messages = []
    for turn in _SAMPLE:
        messages.append({"role": "user", "content": turn.user})
        if turn.assistant is not None:
            messages.append({"role": "assistant", "content": turn.assistant})
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token="", eos_token=""
        )
    except TemplateError as exc:
        raise ValueError(f"the template does not render ({exc})") from None


def render_recipe(recipe: Recipe) -> str:
    """The recipe's own rendering of the sample conversation, as text."""
    pieces = recipe.chat.conversation(_SAMPLE)
    return "".join(p.text for p in pieces if isinstance(p, Markup | Text))


def check_chat_template(path: Path, metadata: dict[str, str], recipe: Recipe) -> None:
    """Raise ModelFileError unless the GGUF's template renders as `recipe` does."""
    template = metadata.get(TEMPLATE_KEY)
    if not template:
        raise ModelFileError(
            path,
            f"no chat template ({TEMPLATE_KEY}); the {recipe.name!r} recipe needs the "
            f"model's own {recipe.chat.template} template",
        )
    try:
        got = render_gguf_template(template)
    except ValueError as exc:
        raise ModelFileError(path, f"its chat template cannot be used: {exc}") from None
    want = render_recipe(recipe)
    if got != want:
        raise ModelFileError(
            path,
            f"its chat template is not the {recipe.chat.template} format of the "
            f"{recipe.name!r} recipe (gritdesk knows text-marker GritLM and ChatML): "
            f"it renders {got!r}, the recipe {want!r}",
        )
