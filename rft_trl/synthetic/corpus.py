"""Seeded generator of agent traces (ReAct and JSON function calling) with per-character ground truth."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from rft_trl.synthetic import phrasing
from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.labels import Span, TextBuilder
from rft_trl.synthetic.world import ToolSpec, World, render_value, template_pieces

FAMILIES: tuple[str, ...] = ("react", "json")
FAMILY_CHOICES: tuple[str, ...] = (*FAMILIES, "mixed")


@dataclass(frozen=True)
class ToolCall:
    """One function call: a tool name and its arguments."""

    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The {"name", "arguments"} form used by JSON function calling."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class Sample:
    """One conversation with the ground-truth role of every assistant character."""

    sample_id: str
    family: str
    messages: list[dict[str, str]]
    # One list per assistant message, in order; the spans cover every character of its content.
    assistant_spans: list[list[Span]]
    calls: list[ToolCall]  # every call of the trace, in order
    tools: list[str] = field(default_factory=list)  # tools offered in the system message

    @property
    def first_assistant_index(self) -> int:
        """Index in `messages` of the first assistant message."""
        return next(i for i, m in enumerate(self.messages) if m["role"] == "assistant")

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """Messages before the first assistant message: the input for generation."""
        return self.messages[: self.first_assistant_index]

    @property
    def first_response(self) -> str:
        """Content of the first assistant message: the reference answer to the prompt."""
        return self.messages[self.first_assistant_index]["content"]

    @property
    def expected_calls(self) -> list[ToolCall]:
        """The call(s) a correct first response makes: one step for ReAct, all calls for JSON."""
        return self.calls[:1] if self.family == "react" else list(self.calls)

    def assistant_contents(self) -> list[str]:
        """Contents of the assistant messages, in order."""
        return [m["content"] for m in self.messages if m["role"] == "assistant"]


@dataclass(frozen=True)
class CorpusSettings:
    """Shape of the generated traces; validated so impossible settings fail early."""

    min_tools: int = 3
    max_tools: int = 6
    min_calls: int = 1
    max_calls: int = 3
    optional_rate: float = 0.4
    # Extra input-independent sentences in every ReAct thought (JSON responses stay pure JSON).
    stock_sentences: int = 0
    # True: every thought carries the pool's first `stock_sentences` sentences, in order (nothing
    # to choose, so they can be learned by heart); False: each thought draws its own.
    stock_fixed: bool = False
    # True: the user request states dates, times and whole numbers up to twenty as a person would
    # say them ("March 7, 2025", "3:30 pm", "seven"), so a call must rewrite them, not copy them.
    spoken_values: bool = False

    def validate(self, world: World) -> None:
        """Raise ValueError naming the argument, the value and the fix."""
        pool = len(world.tools)
        if self.min_tools < 1:
            raise ValueError(
                f"min_tools={self.min_tools}: each system message needs at least 1 tool; pass min_tools >= 1"
            )
        if self.max_tools < self.min_tools:
            raise ValueError(
                f"max_tools={self.max_tools} is below min_tools={self.min_tools}; pass max_tools >= min_tools"
            )
        if self.max_tools > pool:
            raise ValueError(
                f"max_tools={self.max_tools} exceeds the world's pool of {pool} tools; "
                f"pass max_tools <= {pool} or use a larger world"
            )
        if self.min_calls < 1:
            raise ValueError(
                f"min_calls={self.min_calls}: each sample needs at least 1 call; pass min_calls >= 1"
            )
        if self.max_calls < self.min_calls:
            raise ValueError(
                f"max_calls={self.max_calls} is below min_calls={self.min_calls}; pass max_calls >= min_calls"
            )
        if self.min_calls > self.min_tools:
            raise ValueError(
                f"min_calls={self.min_calls} exceeds min_tools={self.min_tools}: calls use distinct offered tools; "
                "pass min_calls <= min_tools"
            )
        if not 0.0 <= self.optional_rate <= 1.0:
            raise ValueError(
                f"optional_rate={self.optional_rate} is not a probability; pass a value in [0, 1]"
            )
        stock_pool = len(phrasing.EXTRA_STOCK_SENTENCES)
        if (
            isinstance(self.stock_sentences, bool)
            or not isinstance(self.stock_sentences, int)
            or not 0 <= self.stock_sentences <= stock_pool
        ):
            raise ValueError(
                f"stock_sentences={self.stock_sentences!r} must be an integer in [0, {stock_pool}] "
                f"(the number of extra stock sentences per ReAct thought)"
            )
        if not isinstance(self.stock_fixed, bool):
            raise ValueError(
                f"stock_fixed={self.stock_fixed!r} must be True (the same stock sentences in every "
                "thought) or False (drawn per thought)"
            )
        if self.stock_fixed and self.stock_sentences == 0:
            raise ValueError(
                "stock_fixed=True has no sentences to fix: pass stock_sentences >= 1 with it"
            )
        if not isinstance(self.spoken_values, bool):
            raise ValueError(
                f"spoken_values={self.spoken_values!r} must be True (dates, times and small numbers "
                "in words in the request) or False (every value as the call writes it)"
            )


def generate_samples(
    n: int,
    family: str = "react",
    seed: int = 0,
    *,
    world: World | None = None,
    split: str = "train",
    offset: int = 0,
    min_tools: int = 3,
    max_tools: int = 6,
    min_calls: int = 1,
    max_calls: int = 3,
    optional_rate: float = 0.4,
    stock_sentences: int = 0,
    stock_fixed: bool = False,
    spoken_values: bool = False,
) -> list[Sample]:
    """Generate samples offset..offset+n-1 of `family` ("react", "json" or "mixed").

    Sample i depends only on (split, seed, i), so runs are prefix-stable and splits never overlap.
    `stock_sentences` adds that many input-independent sentences to every ReAct thought, drawn
    from their own random stream: the tasks, calls and other wording stay those of the default
    corpus, so corpora that differ only in it can be compared sample by sample. `stock_fixed`
    gives every thought the pool's first `stock_sentences` sentences instead, in order.
    `spoken_values` changes only how the request states values (`spoken_value`): the calls and
    responses stay those of the default corpus, sample for sample.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(
            f"n={n!r} must be a non-negative integer (the number of samples to generate)"
        )
    if family not in FAMILY_CHOICES:
        raise ValueError(f"family={family!r} is unknown; pass one of {FAMILY_CHOICES}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(
            f"offset={offset!r} must be a non-negative integer (index of the first sample)"
        )
    if not split or "|" in split:
        raise ValueError(
            f"split={split!r} must be a non-empty name without '|', e.g. 'train' or 'test'"
        )
    world = world if world is not None else default_world()
    settings = CorpusSettings(
        min_tools=min_tools,
        max_tools=max_tools,
        min_calls=min_calls,
        max_calls=max_calls,
        optional_rate=optional_rate,
        stock_sentences=stock_sentences,
        stock_fixed=stock_fixed,
        spoken_values=spoken_values,
    )
    settings.validate(world)
    return [
        _generate_one(world, settings, family, seed, split, i) for i in range(offset, offset + n)
    ]


def _generate_one(
    world: World, settings: CorpusSettings, family: str, seed: int, split: str, index: int
) -> Sample:
    rng = random.Random(f"{split}|{seed}|{index}")
    if family == "mixed":
        family = rng.choice(FAMILIES)
    offered = rng.sample(world.tools, rng.randint(settings.min_tools, settings.max_tools))
    n_calls = min(rng.randint(settings.min_calls, settings.max_calls), len(offered))
    called = rng.sample(offered, n_calls)
    calls = [
        ToolCall(t.name, world.sample_arguments(t, rng, settings.optional_rate)) for t in called
    ]
    stated = [spoken_call(world, c) for c in calls] if settings.spoken_values else calls
    user = _user_request(rng, called, stated)
    sample_id = f"{split}-{seed}-{index:07d}"
    if family == "react":
        stock_rng = random.Random(f"stock|{split}|{seed}|{index}")
        extras = [
            _extra_stock(stock_rng, settings.stock_sentences, settings.stock_fixed)
            for _ in range(n_calls + 1)
        ]
        return _react_sample(rng, world, sample_id, offered, called, calls, user, extras)
    return _json_sample(rng, world, sample_id, offered, calls, user)


# ----------------------------------------------------------------------------- requests

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip


def spoken_value(kind: str, value: Any) -> Any:
    """`value` of a `kind` domain as a person would say it: a date as "March 7, 2025", a time as
    "3:30 pm", a whole number up to twenty as a word; any other value unchanged."""
    if kind == "date":
        year, month, day = value.split("-")
        return f"{_MONTHS[int(month) - 1]} {int(day)}, {year}"
    if kind == "time":
        hour, minute = value.split(":")
        return f"{int(hour) % 12 or 12}:{minute} {'am' if int(hour) < 12 else 'pm'}"
    if kind == "int" and 0 <= value < len(_NUMBER_WORDS):
        return _NUMBER_WORDS[value]
    return value


def spoken_call(world: World, call: ToolCall) -> ToolCall:
    """`call` with its scalar values as `spoken_value` states them (lists stay as they are); it
    differs from `call` exactly when a request with `spoken_values` must be rewritten to make it."""
    tool = world.tool(call.name)
    spoken = {
        name: value
        if isinstance(value, list)
        else spoken_value(world.domains[tool.param(name).domain].kind, value)
        for name, value in call.arguments.items()
    }
    return ToolCall(call.name, spoken)


def rewrites_a_value(sample: Sample, world: World | None = None) -> bool:
    """Whether a correct first response to `sample` writes a value that a request with
    `spoken_values` says in words (so it must be rewritten, not copied)."""
    world = world if world is not None else default_world()
    return any(spoken_call(world, call) != call for call in sample.expected_calls)


def _fill(template: str, values: dict[str, Any]) -> str:
    return "".join(
        lit if f is None else render_value(values[f]) for lit, f in template_pieces(template)
    )


def _task_text(rng: random.Random, tool: ToolSpec, call: ToolCall) -> str:
    text = _fill(rng.choice(tool.tasks), call.arguments)
    for p in tool.params:
        if p.required or p.name not in call.arguments:
            continue
        value = call.arguments[p.name]
        if isinstance(value, bool):
            text += " " + (p.phrase if value else p.phrase_false)
        else:
            text += " " + _fill(p.phrase, call.arguments)
    return text


def _user_request(rng: random.Random, tools: list[ToolSpec], calls: list[ToolCall]) -> str:
    tasks = [_task_text(rng, tool, call) for tool, call in zip(tools, calls, strict=True)]
    text = tasks[0]
    for task in tasks[1:]:
        text += rng.choice(phrasing.TASK_JOINERS) + task
    frame = rng.choice(phrasing.REQUEST_FRAMES)
    before = frame.split("{task}")[0]
    if before == "" or before.endswith(("! ", ". ")):
        text = text[0].upper() + text[1:]
    return frame.replace("{task}", text)


# ----------------------------------------------------------------------------- labelled text


def add_json(b: TextBuilder, value: Any) -> None:
    """Append `json.dumps(value)`: keys and punctuation as format, leaf values as argument_value."""
    if isinstance(value, dict):
        b.fmt("{")
        for i, (key, item) in enumerate(value.items()):
            b.fmt((", " if i else "") + json.dumps(key) + ": ")
            add_json(b, item)
        b.fmt("}")
    elif isinstance(value, list):
        b.fmt("[")
        for i, item in enumerate(value):
            if i:
                b.fmt(", ")
            add_json(b, item)
        b.fmt("]")
    elif isinstance(value, str):
        b.fmt('"').add(value, "argument_value").fmt('"')
    else:
        b.add(json.dumps(value), "argument_value")


def _add_template(
    b: TextBuilder,
    template: str,
    values: dict[str, Any],
    literal_category: str,
    field_category: dict[str, str],
) -> None:
    for literal, name in template_pieces(template):
        if name is None:
            b.add(literal, literal_category)
        else:
            b.add(render_value(values[name]), field_category[name])


def _add_purpose(
    b: TextBuilder, purpose: str, arguments: dict[str, Any], capitalize: bool = False
) -> None:
    text_b = TextBuilder()
    _add_template(text_b, purpose, arguments, "purpose", dict.fromkeys(arguments, "purpose"))
    text, spans = text_b.build()
    if capitalize:
        text = text[0].upper() + text[1:]
    for span in spans:
        b.add(text[span.start : span.end], span.category)


# ----------------------------------------------------------------------------- ReAct


def _extra_stock(rng: random.Random, n: int, fixed: bool) -> str:
    """`n` distinct extra stock sentences, each led by a space ("" for n = 0): drawn, or the pool's first `n`."""
    pool = phrasing.EXTRA_STOCK_SENTENCES
    return "".join(" " + s for s in (pool[:n] if fixed else rng.sample(pool, n)))


def _react_system(rng: random.Random, world: World, offered: list[ToolSpec]) -> str:
    lines = [rng.choice(phrasing.REACT_SYSTEM_INTROS), "", phrasing.REACT_TOOLS_HEADER]
    lines += [world.tool_schema_json(t.name) for t in offered]
    lines += [
        "",
        phrasing.REACT_FORMAT_INSTRUCTIONS.replace("{tools}", ", ".join(t.name for t in offered)),
    ]
    return "\n".join(lines)


def _react_call_turn(
    rng: random.Random, tool: ToolSpec, call: ToolCall, first: bool, extra: str = ""
) -> tuple[str, list[Span]]:
    b = TextBuilder().fmt("Thought: ")
    opener = rng.choice(phrasing.FIRST_THOUGHT_OPENERS if first else phrasing.NEXT_THOUGHT_OPENERS)
    for literal, name in template_pieces(opener):
        if name is None:
            b.stock(literal)
        else:
            _add_purpose(b, rng.choice(tool.purposes), call.arguments)
    b.stock(" ")
    for literal, name in template_pieces(rng.choice(phrasing.TOOL_CLAUSES)):
        if name is None:
            b.stock(literal)
        else:
            b.add(tool.name, "tool_name")
    b.stock(extra)  # TextBuilder ignores empty text
    b.fmt("\nAction: ").add(tool.name, "tool_name").fmt("\nAction Input: ")
    add_json(b, call.arguments)
    return b.build()


def _react_final_turn(
    rng: random.Random,
    tools: list[ToolSpec],
    calls: list[ToolCall],
    results: list[dict[str, Any]],
    extra: str = "",
) -> tuple[str, list[Span]]:
    b = (
        TextBuilder()
        .fmt("Thought: ")
        .stock(rng.choice(phrasing.FINAL_THOUGHTS))
        .stock(extra)
        .fmt("\nFinal Answer: ")
    )
    lead, capitalize = rng.choice(phrasing.ANSWER_LEADS)
    b.stock(lead)
    for i, (tool, call, result) in enumerate(zip(tools, calls, results, strict=True)):
        if i:
            b.stock(rng.choice(phrasing.ANSWER_JOINERS))
        _add_purpose(b, tool.answer, {**call.arguments, **result}, capitalize=capitalize and i == 0)
    b.stock(".")
    return b.build()


def _react_sample(
    rng: random.Random,
    world: World,
    sample_id: str,
    offered: list[ToolSpec],
    called: list[ToolSpec],
    calls: list[ToolCall],
    user: str,
    extras: list[str],
) -> Sample:
    messages = [
        {"role": "system", "content": _react_system(rng, world, offered)},
        {"role": "user", "content": user},
    ]
    spans: list[list[Span]] = []
    results = []
    for i, (tool, call) in enumerate(zip(called, calls, strict=True)):
        content, turn_spans = _react_call_turn(rng, tool, call, first=i == 0, extra=extras[i])
        result = world.observe(tool, call.arguments)
        results.append(result)
        messages.append({"role": "assistant", "content": content})
        messages.append({"role": "tool", "content": json.dumps(result)})
        spans.append(turn_spans)
    content, turn_spans = _react_final_turn(rng, called, calls, results, extra=extras[-1])
    messages.append({"role": "assistant", "content": content})
    spans.append(turn_spans)
    return Sample(sample_id, "react", messages, spans, calls, [t.name for t in offered])


# ----------------------------------------------------------------------------- JSON function calling


def _json_system(rng: random.Random, world: World, offered: list[ToolSpec]) -> str:
    functions = "[" + ", ".join(world.tool_schema_json(t.name) for t in offered) + "]"
    return "\n".join(
        [
            rng.choice(phrasing.JSON_SYSTEM_INTROS),
            phrasing.JSON_FUNCTIONS_HEADER,
            functions,
            rng.choice(phrasing.JSON_FORMAT_INSTRUCTIONS),
        ]
    )


def _json_calls_content(calls: list[ToolCall]) -> tuple[str, list[Span]]:
    b = TextBuilder().fmt("[")
    for i, call in enumerate(calls):
        b.fmt((", " if i else "") + '{"name": "').add(call.name, "tool_name").fmt(
            '", "arguments": '
        )
        add_json(b, call.arguments)
        b.fmt("}")
    b.fmt("]")
    return b.build()


def _json_sample(
    rng: random.Random,
    world: World,
    sample_id: str,
    offered: list[ToolSpec],
    calls: list[ToolCall],
    user: str,
) -> Sample:
    content, spans = _json_calls_content(calls)
    messages = [
        {"role": "system", "content": _json_system(rng, world, offered)},
        {"role": "user", "content": user},
        {"role": "assistant", "content": content},
    ]
    return Sample(sample_id, "json", messages, [spans], calls, [t.name for t in offered])
