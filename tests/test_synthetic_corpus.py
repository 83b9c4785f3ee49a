"""The synthetic corpus: world, determinism, ground-truth spans, datasets, bad input, speed."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from rft_trl.synthetic import (
    CATEGORIES,
    REASONING,
    Sample,
    World,
    default_world,
    generate_samples,
    make_split_samples,
    make_splits,
    prompt_messages,
)
from rft_trl.synthetic.corpus import spoken_value
from rft_trl.synthetic.evaluator import evaluate_response, parse_react_step
from rft_trl.synthetic.phrasing import EXTRA_STOCK_SENTENCES
from rft_trl.synthetic.world import render_value

BOILERPLATE_WORDS = {
    "action",
    "input",
    "answer",
    "request",
    "need",
    "call",
    "thought",
    "final answer",
}


@pytest.fixture(scope="module")
def corpus() -> list[Sample]:
    return generate_samples(600, "mixed", seed=11)


def _span_texts(sample: Sample, category: str) -> list[str]:
    return [
        content[s.start : s.end]
        for content, spans in zip(sample.assistant_contents(), sample.assistant_spans, strict=True)
        for s in spans
        if s.category == category
    ]


def _leaf_values(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaf_values(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaf_values(v)]
    return [value]


def test_world_has_a_large_typed_tool_pool():
    world = default_world()
    assert len(world.tools) >= 40
    assert len(set(world.tool_names)) == len(world.tools)
    for tool in world.tools:
        schema = world.tool_schema(tool)
        assert schema["name"] == tool.name and schema["description"]
        props = schema["parameters"]["properties"]
        assert props and all("type" in p for p in props.values())
        assert set(schema["parameters"]["required"]) <= set(props)


def test_world_facts_are_fixed_by_the_world_seed():
    world, other = default_world(0), default_world(1)
    tool = world.tool("get_weather")
    assert world.observe(tool, {"city": "Paris"}) == world.observe(tool, {"city": "Paris"})
    results = {
        json.dumps(other.observe(tool, {"city": c})) for c in ("Paris", "Oslo", "Lima", "Rome")
    }
    assert len(results) > 1
    assert len(default_world(3, n_tools=10).tools) == 10


def test_same_seed_same_samples_different_seed_different_samples():
    a = generate_samples(50, "mixed", seed=5)
    b = generate_samples(50, "mixed", seed=5)
    c = generate_samples(50, "mixed", seed=6)
    assert [s.messages for s in a] == [s.messages for s in b]
    assert [s.assistant_spans for s in a] == [s.assistant_spans for s in b]
    assert sum(x.messages != y.messages for x, y in zip(a, c, strict=True)) >= 45
    # sample i depends only on (split, seed, i): a shorter run is a prefix, an offset run a suffix
    assert [s.messages for s in generate_samples(10, "mixed", seed=5)] == [
        s.messages for s in a[:10]
    ]
    assert [s.messages for s in generate_samples(5, "mixed", seed=5, offset=45)] == [
        s.messages for s in a[45:]
    ]


def test_spans_cover_every_assistant_character_once(corpus):
    for sample in corpus:
        contents = sample.assistant_contents()
        assert len(contents) == len(sample.assistant_spans)
        for content, spans in zip(contents, sample.assistant_spans, strict=True):
            assert spans[0].start == 0 and spans[-1].end == len(content)
            assert all(a.end == b.start for a, b in itertools.pairwise(spans))
            assert all(s.end > s.start and s.category in CATEGORIES for s in spans)
            assert "template" not in {s.category for s in spans}


def test_reasoning_spans_hold_what_the_input_decides(corpus):
    for sample in corpus:
        tool_names = {c.name for c in sample.calls}
        assert set(_span_texts(sample, "tool_name")) == tool_names
        values = {render_value(v) for c in sample.calls for v in _leaf_values(c.arguments)}
        assert set(_span_texts(sample, "argument_value")) == values
        if sample.family == "react":
            # a purpose phrase in every step's thought and in the final answer
            for content, spans in zip(
                sample.assistant_contents(), sample.assistant_spans, strict=True
            ):
                assert any(s.category == "purpose" for s in spans), content
        for content, spans in zip(sample.assistant_contents(), sample.assistant_spans, strict=True):
            for span in spans:
                text = content[span.start : span.end]
                if span.category == "format":
                    assert not any(text in (v, f" {v}") for v in values if len(v) > 3)


def test_every_stated_value_is_in_the_user_request(corpus):
    world = default_world()
    for sample in corpus:
        user = next(m["content"] for m in sample.messages if m["role"] == "user")
        for call in sample.calls:
            tool = world.tool(call.name)
            for name, value in call.arguments.items():
                param = tool.param(name)
                if isinstance(value, bool):
                    assert (param.phrase if value else param.phrase_false) in user
                else:
                    assert render_value(value) in user, (name, value, user)


def test_react_traces_have_the_toolbench_shape(corpus):
    react = [s for s in corpus if s.family == "react"]
    assert len(react) > 200
    for sample in react:
        roles = [m["role"] for m in sample.messages]
        n = len(sample.calls)
        assert 1 <= n <= 3
        assert roles == ["system", "user", *(["assistant", "tool"] * n), "assistant"]
        system = sample.messages[0]["content"]
        assert 3 <= len(sample.tools) <= 6 and all(f'"name": "{t}"' in system for t in sample.tools)
        steps = sample.assistant_contents()
        for call, step in zip(sample.calls, steps, strict=False):
            assert parse_react_step(step) == [call]
        assert steps[-1].startswith("Thought: ") and "\nFinal Answer: " in steps[-1]
        for message in sample.messages:
            if message["role"] == "tool":
                assert isinstance(json.loads(message["content"]), dict)
    assert {len(s.calls) for s in react} == {1, 2, 3}


def test_json_samples_hold_one_list_of_calls(corpus):
    samples = [s for s in corpus if s.family == "json"]
    assert len(samples) > 200
    for sample in samples:
        assert [m["role"] for m in sample.messages] == ["system", "user", "assistant"]
        assert json.loads(sample.first_response) == [c.to_dict() for c in sample.calls]
        assert sample.first_response == json.dumps([c.to_dict() for c in sample.calls])
        assert sample.expected_calls == sample.calls
    assert {len(s.calls) for s in samples} == {1, 2, 3}


def test_world_defeats_token_shortcuts(corpus):
    values = {v for s in corpus for v in _span_texts(s, "argument_value")}
    assert len(values & BOILERPLATE_WORDS) >= 5  # values that are also boilerplate words
    assert sum(" " in v for v in values) >= 50  # multi-word (multi-token) values
    stock = {t for s in corpus for t in _span_texts(s, "stock_phrase")}
    assert len(stock) >= 30  # boilerplate repeats but is not one string
    purposes = [" ".join(_span_texts(s, "purpose")) for s in corpus if s.family == "react"]
    assert len(set(purposes)) > 0.9 * len(purposes)  # purpose words depend on the sample


def test_content_is_ascii(corpus):
    assert all(m["content"].isascii() for s in corpus for m in s.messages)


def test_reasoning_fraction_is_a_minority_but_substantial(corpus):
    n_reasoning = n_total = 0
    for sample in corpus:
        for spans in sample.assistant_spans:
            for span in spans:
                n_total += span.end - span.start
                n_reasoning += (span.end - span.start) * (span.role == REASONING)
    assert 0.15 < n_reasoning / n_total < 0.6


def _characters_by_category(sample: Sample) -> dict[str, int]:
    counts: dict[str, int] = {}
    for spans in sample.assistant_spans:
        for span in spans:
            counts[span.category] = counts.get(span.category, 0) + span.end - span.start
    return counts


def _task(sample: Sample) -> tuple:
    """What two corpus variants of one sample must share: its id, family, calls and offered tools."""
    return (sample.sample_id, sample.family, sample.calls, sample.tools)


def test_stock_sentences_lengthen_react_thoughts_and_change_nothing_else():
    plain = generate_samples(200, "mixed", seed=5)
    verbose = generate_samples(200, "mixed", seed=5, stock_sentences=3)
    added = {" " + sentence for sentence in EXTRA_STOCK_SENTENCES}
    n_react = 0
    for a, b in zip(plain, verbose, strict=True):
        assert _task(a) == _task(b)
        assert evaluate_response(b, b.first_response).exact_match
        if a.family == "json":
            assert a.messages == b.messages and a.assistant_spans == b.assistant_spans
            continue
        n_react += 1
        assert [m for m in a.messages if m["role"] != "assistant"] == [
            m for m in b.messages if m["role"] != "assistant"
        ]
        for short, long in zip(a.assistant_contents(), b.assistant_contents(), strict=True):
            thought = long.split("\n")[0]
            found = [s for s in added if s in thought]
            assert len(found) == 3  # three distinct pool sentences in every thought
            for sentence in found:
                long = long.replace(sentence, "", 1)
            assert (
                long == short
            )  # remove them and the default corpus is back, character for character
        # Every added character is stock phrasing; every other category keeps its count.
        extra = sum(map(len, b.assistant_contents())) - sum(map(len, a.assistant_contents()))
        before, after = _characters_by_category(a), _characters_by_category(b)
        assert after["stock_phrase"] - before["stock_phrase"] == extra > 0
        del before["stock_phrase"], after["stock_phrase"]
        assert after == before
    assert n_react > 50


def test_fixed_stock_sentences_are_the_pools_first_ones_in_every_thought():
    drawn = generate_samples(100, "mixed", seed=5, stock_sentences=3)
    fixed = generate_samples(100, "mixed", seed=5, stock_sentences=3, stock_fixed=True)
    first_three = "".join(" " + sentence for sentence in EXTRA_STOCK_SENTENCES[:3])
    n_thoughts = 0
    for a, b in zip(drawn, fixed, strict=True):
        assert (a.sample_id, a.calls, a.prompt_messages) == (
            b.sample_id,
            b.calls,
            b.prompt_messages,
        )
        assert evaluate_response(b, b.first_response).exact_match
        if a.family == "json":
            assert a.messages == b.messages
            continue
        for content in b.assistant_contents():
            thought = content.split("\n")[0]
            assert thought.count(first_three) == 1
            assert not any(s in thought for s in EXTRA_STOCK_SENTENCES[3:])
            n_thoughts += 1
        # only the stock phrasing differs (drawn and fixed sentences differ in length)
        extra = sum(map(len, b.assistant_contents())) - sum(map(len, a.assistant_contents()))
        before, after = _characters_by_category(a), _characters_by_category(b)
        assert after.pop("stock_phrase") - before.pop("stock_phrase") == extra
        assert after == before
    assert n_thoughts > 100


@pytest.mark.parametrize(
    ("kind", "value", "spoken"),
    [
        ("date", "2025-03-07", "March 7, 2025"),
        ("date", "2024-12-28", "December 28, 2024"),
        ("time", "00:15", "12:15 am"),
        ("time", "09:00", "9:00 am"),
        ("time", "12:30", "12:30 pm"),
        ("time", "21:45", "9:45 pm"),
        ("int", 0, "zero"),
        ("int", 7, "seven"),
        ("int", 20, "twenty"),
        ("int", 21, 21),
        ("int", -3, -3),
        ("number", 7.5, 7.5),
        ("choice", "Paris", "Paris"),
        ("code", "1Z12345678", "1Z12345678"),
    ],
)
def test_spoken_value_says_dates_times_and_small_numbers_in_words(kind, value, spoken):
    assert spoken_value(kind, value) == spoken


def test_spoken_values_change_only_how_the_request_states_values():
    world = default_world()
    plain = generate_samples(300, "mixed", seed=4, min_tools=3, max_tools=4, min_calls=2)
    spoken = generate_samples(
        300, "mixed", seed=4, min_tools=3, max_tools=4, min_calls=2, spoken_values=True
    )
    n_rewritten = 0
    for a, b in zip(plain, spoken, strict=True):
        # the same sample in every respect but the user request
        assert _task(a) == _task(b)
        assert [m for m in a.messages if m["role"] != "user"] == [
            m for m in b.messages if m["role"] != "user"
        ]
        assert b.assistant_spans == a.assistant_spans
        assert evaluate_response(b, b.first_response).exact_match
        request = b.prompt_messages[-1]["content"]
        rewritten = False
        for call in b.calls:
            tool = world.tool(call.name)
            for name, value in call.arguments.items():
                kind = world.domains[tool.param(name).domain].kind
                said = value if isinstance(value, list) else spoken_value(kind, value)
                if said == value:
                    continue
                rewritten = True
                n_rewritten += call in b.expected_calls
                assert render_value(said) in request
                if kind == "date":  # never as the call writes it ("10:30 am" holds "10:30")
                    assert value not in request
        # a request changes exactly when one of its calls has a value to say in words
        assert (a.prompt_messages[-1] != b.prompt_messages[-1]) == rewritten
    assert n_rewritten > 100  # values in expected calls that must be rewritten, not copied


def test_datasets_have_trl_columns_and_map_back(
    synthetic_samples, messages_dataset, prompt_completion_dataset
):
    assert {"messages", "sample_id", "family", "gt_spans", "expected_calls"} <= set(
        messages_dataset.column_names
    )
    assert {"prompt", "completion", "sample_id", "family", "gt_spans"} <= set(
        prompt_completion_dataset.column_names
    )
    for sample, row, pc in zip(
        synthetic_samples, messages_dataset, prompt_completion_dataset, strict=True
    ):
        assert row["sample_id"] == pc["sample_id"] == sample.sample_id
        assert row["messages"] == sample.messages
        assert pc["prompt"] == sample.prompt_messages
        assert pc["completion"] == [{"role": "assistant", "content": sample.first_response}]
        assert len(row["gt_spans"]) == len(sample.assistant_spans)
        assert len(pc["gt_spans"]) == 1
        assert json.loads(row["expected_calls"]) == [c.to_dict() for c in sample.expected_calls]
        assert prompt_messages(row) == prompt_messages(pc) == prompt_messages(sample)


def test_splits_are_disjoint():
    train, test = make_split_samples(300, 100, family="json", seed=2, max_calls=1)
    assert len(train) == 300 and len(test) == 100
    assert not {s.sample_id for s in train} & {s.sample_id for s in test}
    train_prompts = {json.dumps(s.prompt_messages) for s in train}
    assert not any(json.dumps(s.prompt_messages) in train_prompts for s in test)
    splits = make_splits(8, 4, form="prompt_completion", seed=2)
    assert splits["train"].num_rows == 8 and splits["test"].num_rows == 4
    assert "completion" in splits["test"].column_names


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"n": -1}, ["n=-1"]),
        ({"family": "xml"}, ["family='xml'", "react"]),
        ({"min_tools": 0, "max_tools": 0}, ["min_tools=0", ">= 1"]),
        ({"max_tools": 51}, ["max_tools=51", "pool of 50"]),
        ({"min_tools": 5, "max_tools": 4}, ["max_tools=4", "min_tools=5"]),
        ({"min_calls": 0}, ["min_calls=0"]),
        ({"min_calls": 3, "max_calls": 2}, ["max_calls=2"]),
        ({"min_calls": 4, "max_calls": 4, "min_tools": 3}, ["min_calls=4", "min_tools=3"]),
        ({"optional_rate": 1.5}, ["optional_rate=1.5"]),
        ({"offset": -2}, ["offset=-2"]),
        ({"stock_sentences": -1}, ["stock_sentences=-1", "[0, 16]"]),
        ({"stock_sentences": 17}, ["stock_sentences=17", "[0, 16]"]),
        ({"stock_sentences": True}, ["stock_sentences=True"]),
        ({"stock_fixed": 1, "stock_sentences": 2}, ["stock_fixed=1", "True"]),
        ({"stock_fixed": True}, ["stock_fixed=True", "stock_sentences >= 1"]),
        ({"spoken_values": 1}, ["spoken_values=1", "True"]),
    ],
)
def test_impossible_settings_are_rejected_with_the_fix(kwargs, names):
    call = {"n": 3, "family": "react", "seed": 0, **kwargs}
    with pytest.raises(ValueError) as info:
        generate_samples(**call)
    for name in names:
        assert name in str(info.value)


def test_bad_worlds_are_rejected():
    with pytest.raises(ValueError, match="no tools"):
        World(tools=(), domains={})
    with pytest.raises(ValueError, match="n_tools=0"):
        default_world(n_tools=0)
    with pytest.raises(ValueError, match="max_tools=6 exceeds the world's pool of 4"):
        generate_samples(2, world=default_world(n_tools=4))
    with pytest.raises(ValueError, match="form='chat'"):
        make_splits(2, 2, form="chat")


def test_ten_thousand_samples_generate_in_seconds():
    start = time.perf_counter()
    samples = generate_samples(10_000, "mixed", seed=1)
    elapsed = time.perf_counter() - start
    assert len(samples) == 10_000
    assert elapsed < 30, f"10k samples took {elapsed:.1f}s"
