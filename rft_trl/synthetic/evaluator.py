"""Parse a generated first response and score it against the sample's expected call(s)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rft_trl.synthetic.corpus import FAMILIES, Sample, ToolCall

_REACT_ACTION = re.compile(
    r"\A\s*Thought:(?P<thought>[^\n]*)\nAction:[ \t]*(?P<action>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\n"
    r"Action Input:[ \t]*(?P<input>.*)\Z",
    re.DOTALL,
)
_REACT_FINAL = re.compile(r"\A\s*Thought:[^\n]*\nFinal Answer:(?P<answer>.*\S.*)\Z", re.DOTALL)


class ParseError(ValueError):
    """The response is not in the family's format."""


@dataclass(frozen=True)
class EvalResult:
    """Score of one response."""

    format_valid: bool  # parses in the family's format
    exact_match: bool  # the parsed call(s) equal the expected call(s)
    calls: list[ToolCall] | None  # parsed calls (None when the format is invalid)
    error: str | None = None  # why parsing failed


def parse_react_step(text: str) -> list[ToolCall]:
    """Calls of a ReAct step: one for "Thought/Action/Action Input", none for "Thought/Final Answer"."""
    match = _REACT_ACTION.match(text)
    if match is None:
        if _REACT_FINAL.match(text):
            return []
        raise ParseError(
            "expected 'Thought: ...', then 'Action: <tool>' and 'Action Input: {json}' lines"
        )
    arguments = _json_value(match["input"])
    if not isinstance(arguments, dict):
        raise ParseError("Action Input must be a JSON object")
    return [ToolCall(match["action"], arguments)]


def parse_json_calls(text: str) -> list[ToolCall]:
    """Calls of a JSON function-calling response: a list of {"name": str, "arguments": object}."""
    value = _json_value(text)
    if not isinstance(value, list):
        raise ParseError("expected a JSON list of calls")
    calls = []
    for item in value:
        if not (
            isinstance(item, dict)
            and set(item) == {"name", "arguments"}
            and isinstance(item["name"], str)
            and isinstance(item["arguments"], dict)
        ):
            raise ParseError('each call must be {"name": <string>, "arguments": <object>}')
        calls.append(ToolCall(item["name"], item["arguments"]))
    return calls


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ParseError(f"invalid JSON: {err}") from None


def _normalize(value: Any) -> Any:
    # JSON equality after parsing: 3 == 3.0, but true is not 1.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("list", tuple(_normalize(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _normalize(v)) for k, v in value.items())))
    return ("null", None)


def calls_match(predicted: Sequence[ToolCall], expected: Sequence[ToolCall]) -> bool:
    """Same calls with JSON-equal arguments; order-insensitive (parallel calls may come in any order)."""

    def key(calls: Sequence[ToolCall]) -> Counter:
        return Counter((c.name, _normalize(c.arguments)) for c in calls)

    return len(predicted) == len(expected) and key(predicted) == key(expected)


def _family_and_expected(example: Sample | Mapping[str, Any]) -> tuple[str, list[ToolCall]]:
    if isinstance(example, Sample):
        return example.family, example.expected_calls
    if "family" not in example or "expected_calls" not in example:
        raise ValueError(
            "a dataset row needs 'family' and 'expected_calls' columns; pass the Sample instead"
        )
    expected = [ToolCall(c["name"], c["arguments"]) for c in json.loads(example["expected_calls"])]
    return example["family"], expected


def evaluate_response(example: Sample | Mapping[str, Any], text: str) -> EvalResult:
    """Score a generated first response to `example`'s prompt (a Sample or a dataset row)."""
    family, expected = _family_and_expected(example)
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is unknown; expected one of {FAMILIES}")
    parse = parse_react_step if family == "react" else parse_json_calls
    try:
        calls = parse(text)
    except ParseError as err:
        return EvalResult(format_valid=False, exact_match=False, calls=None, error=str(err))
    return EvalResult(format_valid=True, exact_match=calls_match(calls, expected), calls=calls)


def evaluate(
    examples: Sequence[Sample | Mapping[str, Any]], responses: Sequence[str]
) -> dict[str, float]:
    """Mean exact_match and format_valid over responses, overall and per family."""
    if len(examples) != len(responses):
        raise ValueError(
            f"got {len(examples)} examples but {len(responses)} responses; pass one response per example"
        )
    per_family: dict[str, list[EvalResult]] = {}
    for example, text in zip(examples, responses, strict=True):
        family, _ = _family_and_expected(example)
        per_family.setdefault(family, []).append(evaluate_response(example, text))
    results = [r for rs in per_family.values() for r in rs]
    report: dict[str, float] = _rates(results)
    for family, rs in sorted(per_family.items()):
        report.update({f"{family}/{k}": v for k, v in _rates(rs).items()})
    return report


def _rates(results: Sequence[EvalResult]) -> dict[str, float]:
    n = len(results)
    return {
        "exact_match": sum(r.exact_match for r in results) / n if n else 0.0,
        "format_valid": sum(r.format_valid for r in results) / n if n else 0.0,
        "n": float(n),
    }
