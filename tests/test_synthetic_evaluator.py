"""The evaluator: correct first responses score 1, corrupted ones 0."""

from __future__ import annotations

import json

import pytest

from rft_trl.synthetic import (
    Sample,
    evaluate,
    evaluate_response,
    generate_samples,
    to_messages_dataset,
    to_prompt_completion_dataset,
)


@pytest.fixture(scope="module")
def react() -> list[Sample]:
    return generate_samples(40, "react", seed=4)


@pytest.fixture(scope="module")
def json_samples() -> list[Sample]:
    return generate_samples(40, "json", seed=4)


def _other_tool(sample: Sample) -> str:
    return next(t for t in sample.tools if t != sample.calls[0].name)


def _with_first_value_changed(arguments: dict) -> dict:
    name, value = next(iter(arguments.items()))
    if isinstance(value, bool):
        new = not value
    elif isinstance(value, int | float):
        new = value + 1
    elif isinstance(value, list):
        new = value[:-1]
    else:
        new = value + "x"
    return {**arguments, name: new}


def test_reference_responses_score_one(react, json_samples):
    for sample in react + json_samples:
        result = evaluate_response(sample, sample.first_response)
        assert result.format_valid and result.exact_match, (sample.first_response, result.error)


def test_react_corruptions_score_zero(react):
    for sample in react:
        text = sample.first_response
        call = sample.calls[0]
        args_json = json.dumps(call.arguments)
        thought = text.split("\n")[0]
        wrong_tool = text.replace(f"Action: {call.name}", f"Action: {_other_tool(sample)}")
        wrong_value = text.replace(args_json, json.dumps(_with_first_value_changed(call.arguments)))
        assert wrong_value != text
        for corrupted in (wrong_tool, wrong_value):
            result = evaluate_response(sample, corrupted)
            assert result.format_valid and not result.exact_match
        broken_json = text[:-1]
        missing_action = text.replace(f"\nAction: {call.name}", "")
        missing_thought = text.replace(thought + "\n", "")
        trailing_text = text + "\nObservation: sunny"
        for corrupted in (broken_json, missing_action, missing_thought, trailing_text, ""):
            result = evaluate_response(sample, corrupted)
            assert not result.format_valid and not result.exact_match and result.error


def test_react_final_answer_first_is_valid_format_but_wrong(react):
    sample = next(s for s in react if len(s.calls) == 1)
    result = evaluate_response(sample, "Thought: I know it.\nFinal Answer: 42.")
    assert result.format_valid and not result.exact_match and result.calls == []


def test_json_corruptions_score_zero(json_samples):
    for sample in json_samples:
        calls = [c.to_dict() for c in sample.calls]
        wrong_name = [{**calls[0], "name": _other_tool(sample)}, *calls[1:]]
        wrong_value = [
            {**calls[0], "arguments": _with_first_value_changed(calls[0]["arguments"])},
            *calls[1:],
        ]
        extra = [*calls, calls[0]]
        stringly = [
            {**c, "arguments": {k: str(v) for k, v in c["arguments"].items()}} for c in calls
        ]
        for corrupted in (wrong_name, wrong_value, extra):
            result = evaluate_response(sample, json.dumps(corrupted))
            assert result.format_valid and not result.exact_match
        if any(not isinstance(v, str) for c in calls for v in c["arguments"].values()):
            assert not evaluate_response(sample, json.dumps(stringly)).exact_match
        if len(calls) > 1:
            assert not evaluate_response(sample, json.dumps(calls[:-1])).exact_match
        for corrupted in (json.dumps(calls)[:-1], json.dumps(calls[0]), '[{"name": "x"}]', "sure!"):
            result = evaluate_response(sample, corrupted)
            assert not result.format_valid and not result.exact_match


def test_equal_json_in_another_form_still_matches(json_samples):
    multi = next(s for s in json_samples if len(s.calls) > 1)
    calls = [c.to_dict() for c in multi.calls]
    reordered = [
        {"arguments": dict(reversed(list(c["arguments"].items()))), "name": c["name"]}
        for c in calls[::-1]
    ]
    assert evaluate_response(multi, json.dumps(reordered, indent=2)).exact_match
    numeric = next(
        s
        for s in json_samples
        if any(type(v) is int for c in s.calls for v in c.arguments.values())
    )
    as_float = [
        {
            **c.to_dict(),
            "arguments": {k: float(v) if type(v) is int else v for k, v in c.arguments.items()},
        }
        for c in numeric.calls
    ]
    assert evaluate_response(numeric, json.dumps(as_float)).exact_match


def test_booleans_are_not_numbers():
    from rft_trl.synthetic.corpus import ToolCall
    from rft_trl.synthetic.evaluator import calls_match

    assert not calls_match([ToolCall("f", {"x": 1})], [ToolCall("f", {"x": True})])
    assert calls_match([ToolCall("f", {"x": 1})], [ToolCall("f", {"x": 1.0})])


def test_batch_evaluate_reports_rates_and_accepts_rows(react, json_samples):
    samples = react[:10] + json_samples[:10]
    responses = [s.first_response for s in samples[:15]] + ["oops"] * 5
    report = evaluate(samples, responses)
    assert report["exact_match"] == pytest.approx(15 / 20)
    assert report["format_valid"] == pytest.approx(15 / 20)
    assert report["react/exact_match"] == 1.0 and report["json/exact_match"] == pytest.approx(0.5)
    assert report["n"] == 20
    for rows in (to_messages_dataset(samples), to_prompt_completion_dataset(samples)):
        assert evaluate(list(rows), responses) == report
    with pytest.raises(ValueError, match="one response per example"):
        evaluate(samples, responses[:-1])
