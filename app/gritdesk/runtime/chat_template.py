"""A GGUF's own chat template (`tokenizer.chat_template`): check a recipe against it, or read
a recipe from it.

Recipes write their turns themselves, piece by piece, so user and document text is never
parsed for special tokens. The model's Jinja template is rendered with jinja2's sandbox (as
llama-cpp-python does):

- `check_chat_template`: a tuned chat-template recipe (SmolLM2's ChatML) requires the very
  text the template renders on a sample conversation; a model with another template fails at
  load with both shown.
- `recipe_from_template`: a model with no tuned recipe answers in its own turns. The template is
  rendered with sentinel strings in place of each message's content and of BOS/EOS, the
  rendering is split at them into the template's markups (`recipes.template_recipe`), and
  the markups must render a longer conversation exactly as the template does.
- `file_recipe_name`: which recipe a GGUF runs with when nothing names one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.gguf_check import EMBEDDING_ONLY_ARCHITECTURES, GgufSummary
from gritdesk.runtime.recipes import (
    DEFAULT_RECIPE,
    EOS,
    TEMPLATE_RECIPE,
    Markup,
    Piece,
    Recipe,
    Text,
    Turn,
    template_recipe,
)

TEMPLATE_KEY = "tokenizer.chat_template"
RECIPE_KEY = "gritdesk.recipe"  # a recipe name gritdesk wrote into a GGUF it made


class _Turn:
    def __init__(self, user: str, assistant: str | None) -> None:
        self.user, self.assistant = user, assistant


_SAMPLE = (_Turn("What is 1+1?", "2"), _Turn("And 2+2?", "4"), _Turn("And 3+3?", None))
# Sentinels: strings no template writes, none with whitespace (templates `trim` contents).
_BOS, _EOS = "\u2402gritdesk-bos\u2402", "\u2403gritdesk-eos\u2403"
_U1, _A1, _U2 = (f"\u2401gritdesk-{part}\u2401" for part in ("user-1", "answer-1", "user-2"))


def _raise_exception(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def render_gguf_template(
    template: str, turns: Sequence[Turn] = _SAMPLE, *, bos_token: str = "", eos_token: str = ""
) -> str:
    """The model's template on `turns`, ready for the assistant's answer when the last turn
    is open (`add_generation_prompt`), else ending with the last answer. The globals are the
    ones Hugging Face's and llama-cpp-python's renderers give templates."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.user})
        if turn.assistant is not None:
            messages.append({"role": "assistant", "content": turn.assistant})
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    open_turn = bool(turns) and turns[-1].assistant is None
    try:
        return env.from_string(template).render(
            messages=messages,
            add_generation_prompt=open_turn,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except Exception as exc:  # a template is a program: TemplateError, TypeError, ...
        raise ValueError(f"the template does not render ({type(exc).__name__}: {exc})") from None


def render_recipe(recipe: Recipe, turns: Sequence[Turn] = _SAMPLE) -> str:
    """The recipe's own rendering of `turns`, as text (BOS and EOS are tokens, not text)."""
    pieces = recipe.chat.conversation(turns)
    return "".join(p.text for p in pieces if isinstance(p, Markup | Text))


def check_chat_template(path: Path, metadata: Mapping[str, str], recipe: Recipe) -> None:
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


# --- a recipe read from the template ---------------------------------------------------------


class _Unsplittable(ValueError):
    pass


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _markup(text: str, where: str) -> str:
    """Markup that may hold no BOS or EOS (only the chat's start and an answer's end do)."""
    if _BOS in text or _EOS in text:
        raise _Unsplittable(f"it puts BOS or EOS in {where}, where gritdesk's turns have none")
    return text


def _split(template: str) -> Recipe:
    """Read the template's markups from three renderings with sentinel contents."""

    def render(*turns: tuple[str, str | None]) -> str:
        sample = [_Turn(user, assistant) for user, assistant in turns]
        return render_gguf_template(template, sample, bos_token=_BOS, eos_token=_EOS)

    one = render((_U1, None))  # opening + user + U1 + assistant
    two = render((_U1, _A1), (_U2, None))  # ... + A1 + answer end + user + U2 + assistant
    answered = render((_U1, _A1))  # ... + A1 + answer end (+ what ends a finished chat)
    if one.count(_U1) != 1:
        raise _Unsplittable("it does not write a user message exactly once")
    head, assistant = one.split(_U1)
    if not two.startswith(head + _U1 + assistant + _A1) or two.count(_U2) != 1:
        raise _Unsplittable("an earlier turn renders otherwise than the turn being answered")
    between = two[len(head + _U1 + assistant + _A1) : two.index(_U2)]
    if not answered.startswith(head + _U1 + assistant + _A1):
        raise _Unsplittable("a finished turn renders otherwise than an open one")
    # an answer's end is what follows it both before the next turn and at the chat's end
    # (some templates close a finished chat with EOS after the end-of-turn marker)
    answer_end = _common_prefix(answered[len(head + _U1 + assistant + _A1) :], between)
    user = between[len(answer_end) :]
    if not head.endswith(user) or two != head + _U1 + assistant + _A1 + between + _U2 + assistant:
        raise _Unsplittable("its later turns do not open as its first one does")
    opening = head[: len(head) - len(user)]
    opening = opening.removeprefix(_BOS)  # the prompt's BOS piece puts it there
    end_pieces: list[Piece] = []
    for i, part in enumerate(answer_end.split(_EOS)):
        end_pieces += [EOS] if i else []
        end_pieces += [Markup(_markup(part, "an answer's end"))] if part else []
    # a user message closes as an answer does when the assistant's markup starts that way
    user_end = answer_end if _EOS not in answer_end and assistant.startswith(answer_end) else ""
    return template_recipe(
        system=_markup(opening, "the chat's opening"),
        user=_markup(user, "a user message's start"),
        user_end=user_end,
        assistant=_markup(assistant, "a user message's end"),
        answer_end=end_pieces,
    )


def recipe_from_template(path: Path, metadata: Mapping[str, str]) -> Recipe:
    """The recipe of the GGUF's own chat template; ModelFileError (naming the file) when it
    has none, does not render, or renders turns gritdesk cannot split and re-render exactly."""
    template = metadata.get(TEMPLATE_KEY)
    if not template:
        raise ModelFileError(
            path,
            f"no chat template ({TEMPLATE_KEY}) to render turns with; name a recipe for it "
            f"with --recipe ({DEFAULT_RECIPE!r} uses GritLM's plain-text markers)",
        )
    try:
        recipe = _split(template)
    except _Unsplittable as exc:
        raise ModelFileError(
            path,
            f"its chat template cannot be split into turns: {exc}; name a recipe for it with "
            "--recipe",
        ) from None
    except ValueError as exc:
        raise ModelFileError(path, f"its chat template cannot be used: {exc}") from None
    want, got = render_gguf_template(template), render_recipe(recipe)
    if got != want:
        raise ModelFileError(
            path,
            "its chat template renders a conversation otherwise than the turns read from it: "
            f"the template {want!r}, the turns {got!r}; name a recipe for it with --recipe",
        )
    return recipe


def file_recipe_name(summary: GgufSummary) -> str:
    """The recipe of a GGUF that nothing else names one for (flag, config, the index, `models
    add`, a known build's file name: `session.choose_recipe`): the `gritdesk.recipe` key
    gritdesk writes into files it makes; a GritLM build (so named in its metadata or file
    name) or a file without a chat template runs GritLM's; any other model that generates
    (not an encoder) answers in its own chat template."""
    metadata = summary.metadata
    named = metadata.get(RECIPE_KEY)
    if named:
        return named
    names = (summary.name, metadata.get("general.basename", ""), summary.path.name)
    gritlm = any("gritlm" in name.lower().replace("-", "") for name in names)
    generates = summary.architecture not in EMBEDDING_ONLY_ARCHITECTURES
    if generates and not gritlm and metadata.get(TEMPLATE_KEY):
        return TEMPLATE_RECIPE
    return DEFAULT_RECIPE
