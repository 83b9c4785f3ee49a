"""Same-world pretraining text: requests paired with their calls, results and summaries in non-agent forms.

A tiny base model pretrained on this text behaves like a real pretrained LLM meeting a new agent
format (the regime where SHAD works best in the prototype study, docs/benchmarks.md): it has learned the input -> value
dependencies of the world (which tool a request needs, which values it carries, what a result
says) from function-call syntax, JSON dicts and key-value records, but it has never seen the
agent response templates (Thought/Action/Action Input, the JSON call list of the json family)
nor their stock phrasing. The optional slot forms (`SLOT_FORMS`) write calls as named slots whose
names vary per document, so the base learns "a slot after a request holds the tool it needs"
without meeting the agent templates' own slot names (docs/benchmarks.md §2 measures what they do
to SHAD's labels).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.corpus import Sample, ToolCall, generate_samples
from rft_trl.synthetic.world import ToolSpec, World, render_value, template_pieces

# How the calls of a request are written. None of these is an agent response template.
CALL_FORMS: tuple[str, ...] = ("function", "params", "record", "xml", "url", "cli")
BASIC_FORMS: tuple[str, ...] = CALL_FORMS[:3]
# Forms whose tool name and arguments sit in named slots, with the slot names drawn per document
# from a pool ("Tool: x / Args: {...}", `{"fn": "x", "params": {...}}`): the base learns that a
# slot after a request holds the tool the request needs, whatever the slot is called, as a real
# LLM has seen many such layouts. The agent templates' own slot names are not in the pools.
SLOT_FORMS: tuple[str, ...] = ("labelled", "keyed")
ALL_FORMS: tuple[str, ...] = CALL_FORMS + SLOT_FORMS
# Strings that must never occur in pretraining text (checked by `check_document`).
FORBIDDEN: tuple[str, ...] = (
    "Thought:",
    "Action:",
    "Action Input:",
    "Final Answer:",
    '"arguments"',
)

_REQUEST_LABELS = ("Request", "Query", "Task", "User")
_SCHEMA_HEADERS = ("Available functions:", "API reference:", "Known endpoints:")
_RESULT_ARROWS = (" = ", " -> ", " returns ")
_SUMMARY_LABELS = ("Summary", "In short", "Result")
_TOPIC_LABELS = ("Topic", "Subject", "About")
_NAME_LABELS = (
    "Tool",
    "Call",
    "Use",
    "Function",
    "Step",
    "Invoke",
    "Run",
    "Command",
    "Method",
    "API",
)
_ARGS_LABELS = ("Input", "Args", "Params", "Parameters", "With", "Options", "Payload", "Values")
_NAME_KEYS = ("tool", "function", "call", "api", "method", "op", "endpoint", "fn")
_ARGS_KEYS = ("args", "params", "parameters", "input", "kwargs", "payload", "options", "data")


def fill(template: str, values: dict[str, Any]) -> str:
    """`template` with its {fields} replaced by `values` rendered as prose."""
    return "".join(
        literal if name is None else render_value(values[name])
        for literal, name in template_pieces(template)
    )


def _value_literal(value: Any) -> str:
    """A value as a Python-like literal: strings quoted, lists in brackets, numbers and booleans as JSON."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value_literal(v) for v in value) + "]"
    return json.dumps(value)


def slot_names(rng: random.Random, form: str) -> tuple[str, str] | None:
    """The (name slot, arguments slot) of one document in a slot form, drawn from the pools; None otherwise."""
    if form == "labelled":
        return rng.choice(_NAME_LABELS), rng.choice(_ARGS_LABELS)
    if form == "keyed":
        return rng.choice(_NAME_KEYS), rng.choice(_ARGS_KEYS)
    return None


def render_call(call: ToolCall, form: str, slots: tuple[str, str] | None = None) -> str:
    """One call in a non-agent form: `name(arg="v")`, `name params = {...}`, `Record -- tool: name -- arg: v`,
    `<name arg="v"/>`, `GET /name?arg=v`, `$ name --arg "v"`; or, with `slots` (`slot_names`),
    `Tool: name` + `Args: {...}` lines or `{"fn": "name", "params": {...}}`."""
    if form in SLOT_FORMS:
        if slots is None:
            raise ValueError(f"form={form!r} needs its slot names (slot_names)")
        name_slot, args_slot = slots
        if form == "labelled":
            return f"{name_slot}: {call.name}\n{args_slot}: {json.dumps(call.arguments)}"
        return json.dumps({name_slot: call.name, args_slot: call.arguments})
    if form == "function":
        args = ", ".join(f"{k}={_value_literal(v)}" for k, v in call.arguments.items())
        return f"{call.name}({args})"
    if form == "params":
        return f"{call.name} params = {json.dumps(call.arguments)}"
    if form == "record":
        fields = "".join(f" -- {k}: {render_value(v)}" for k, v in call.arguments.items())
        return f"Record -- tool: {call.name}{fields}"
    if form == "xml":
        attrs = "".join(f' {k}="{render_value(v)}"' for k, v in call.arguments.items())
        return f"<{call.name}{attrs}/>"
    if form == "url":
        query = "&".join(f"{k}={render_value(v)}" for k, v in call.arguments.items())
        return f"GET /{call.name}?{query}"
    if form == "cli":
        flags = "".join(f" --{k} {_value_literal(v)}" for k, v in call.arguments.items())
        return f"$ {call.name}{flags}"
    raise ValueError(f"form={form!r} is unknown; use one of {ALL_FORMS}")


def _user_request(sample: Sample) -> str:
    return next(m["content"] for m in sample.messages if m["role"] == "user")


def _schema_block(rng: random.Random, world: World, names: list[str]) -> str:
    return "\n".join([rng.choice(_SCHEMA_HEADERS), *(world.tool_schema_json(n) for n in names)])


def _topic_lines(rng: random.Random, tools: list[ToolSpec], calls: list[ToolCall]) -> list[str]:
    label = rng.choice(_TOPIC_LABELS)
    return [
        f"{label}: {fill(rng.choice(t.purposes), c.arguments)}"
        for t, c in zip(tools, calls, strict=True)
    ]


def _result_lines(
    rng: random.Random,
    world: World,
    tools: list[ToolSpec],
    calls: list[ToolCall],
    form: str,
    slots: tuple[str, str] | None,
) -> list[str]:
    lines, clauses = [], []
    arrow = rng.choice(_RESULT_ARROWS)
    for tool, call in zip(tools, calls, strict=True):
        result = world.observe(tool, call.arguments)
        lines.append(render_call(call, form, slots) + arrow + json.dumps(result))
        clauses.append(fill(tool.answer, {**call.arguments, **result}))
    lines.append(f"{rng.choice(_SUMMARY_LABELS)}: " + "; ".join(clauses) + ".")
    return lines


@dataclass(frozen=True)
class TextDocument:
    """A plain-text document: a context (schemas, request) and what follows from it (calls, results, summary)."""

    context: str
    answer: str

    @property
    def text(self) -> str:
        """The whole document."""
        return f"{self.context}\n{self.answer}"


def document(
    sample: Sample,
    rng: random.Random,
    world: World,
    schema_rate: float = 0.3,
    forms: tuple[str, ...] = BASIC_FORMS,
    echo: bool = False,
) -> TextDocument:
    """One pretraining document about `sample`'s request (the agent response itself is never used)."""
    tools = [world.tool(c.name) for c in sample.calls]
    calls = list(sample.calls)
    form = rng.choice(forms)
    slots = slot_names(rng, form)
    lines: list[str] = []
    if rng.random() < schema_rate:
        lines.append(_schema_block(rng, world, sample.tools))
    lines.append(f"{rng.choice(_REQUEST_LABELS)}: {_user_request(sample)}")
    context, lines = "\n".join(lines), []
    if echo:
        # Verbatim repetition (as in quotes and replies on the web) is what teaches a small model to copy.
        lines.append(f"Quote: {_user_request(sample)}")
    kind = rng.random()
    if kind < 0.5:
        lines += [render_call(c, form, slots) for c in calls]
    elif kind < 0.75:
        lines += _topic_lines(rng, tools, calls)
        lines += [render_call(c, form, slots) for c in calls]
    else:
        lines += _result_lines(rng, world, tools, calls, form, slots)
    return TextDocument(context, "\n".join(lines))


def check_document(text: str) -> None:
    """Raise ValueError if `text` contains an agent response template marker."""
    for marker in FORBIDDEN:
        if marker in text:
            raise ValueError(f"pretraining text contains the agent-template marker {marker!r}")


def pretraining_documents(n: int, seed: int = 0, **kwargs: Any) -> Iterator[str]:
    """`n` seeded plain-text documents as strings (see `pretraining_items`, which can also yield chat documents)."""
    for item in pretraining_items(n, seed, **{**kwargs, "chat_rate": 0.0}):
        assert isinstance(item, TextDocument)
        yield item.text


_CHAT_SYSTEMS = (
    "Reply with the function calls that serve the request, one per line.",
    "Write the calls needed for the user's request.",
    "Translate the request into calls.",
)


def chat_document(
    sample: Sample,
    rng: random.Random,
    world: World,
    schema_rate: float = 0.3,
    forms: tuple[str, ...] = BASIC_FORMS,
) -> list[dict[str, str]]:
    """One chat-form document: the request as a user turn answered by calls in a non-agent form.

    Teaches the role tokens and "the assistant turn answers the user turn", as an instruction-
    tuned model knows it, without any agent response template.
    """
    tools = [world.tool(c.name) for c in sample.calls]
    calls = list(sample.calls)
    form = rng.choice(forms)
    slots = slot_names(rng, form)
    system = rng.choice(_CHAT_SYSTEMS)
    if rng.random() < schema_rate:
        system += "\n" + _schema_block(rng, world, sample.tools)
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": _user_request(sample)},
        {"role": "assistant", "content": "\n".join(render_call(c, form, slots) for c in calls)},
    ]
    if rng.random() < 0.3:
        results = [world.observe(t, c.arguments) for t, c in zip(tools, calls, strict=True)]
        clauses = [
            fill(t.answer, {**c.arguments, **r})
            for t, c, r in zip(tools, calls, results, strict=True)
        ]
        messages.append({"role": "tool", "content": json.dumps(results)})
        messages.append({"role": "assistant", "content": "; ".join(clauses) + "."})
    for message in messages:
        check_document(message["content"])
    return messages


def pretraining_items(
    n: int,
    seed: int = 0,
    *,
    world: World | None = None,
    schema_rate: float = 0.3,
    chat_rate: float = 0.0,
    forms: tuple[str, ...] = BASIC_FORMS,
    echo_rate: float = 0.0,
    spoken_rate: float = 0.0,
    min_tools: int = 3,
    max_tools: int = 6,
    offset: int = 0,
) -> Iterator[TextDocument | list[dict[str, str]]]:
    """Documents offset..offset+n-1 of `seed`: plain text (`document`), or chat messages (`chat_document`) with `chat_rate`.

    Document i depends only on (seed, i), so a long stream can be built in chunks, in parallel.
    With `spoken_rate` that share of documents states the request's dates, times and small numbers
    in words while the calls keep their own form (the corpus' `spoken_values`), so the base sees
    that mapping outside the agent templates; every other document stays as it was.
    """
    if not 0.0 <= spoken_rate <= 1.0:
        raise ValueError(
            f"spoken_rate={spoken_rate!r} is not a probability; pass a value in [0, 1]"
        )
    world = world if world is not None else default_world()
    shape = {"min_tools": min_tools, "max_tools": max_tools}
    samples = generate_samples(
        n, "react", seed, world=world, split="pretrain", offset=offset, **shape
    )
    for index, sample in enumerate(samples, start=offset):
        if random.Random(f"pretrain-spoken|{seed}|{sample.sample_id}").random() < spoken_rate:
            # the same sample (it depends only on the split, seed and index) with its request said
            (sample,) = generate_samples(
                1,
                "react",
                seed,
                world=world,
                split="pretrain",
                offset=index,
                spoken_values=True,
                **shape,
            )
        rng = random.Random(f"pretrain-doc|{seed}|{sample.sample_id}")
        if rng.random() < chat_rate:
            yield chat_document(sample, rng, world, schema_rate, forms)
        else:
            echo = random.Random(f"pretrain-echo|{seed}|{sample.sample_id}").random() < echo_rate
            doc = document(sample, rng, world, schema_rate, forms, echo)
            check_document(doc.text)
            yield doc
