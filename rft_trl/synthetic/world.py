"""The synthetic tool world: value domains, tools with typed parameters, and deterministic tool results.

The world is reused beyond the agent corpus (e.g. to write same-world pretraining text in other
forms), so it knows nothing about the ReAct or JSON response formats.
"""

from __future__ import annotations

import functools
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

JSON_TYPES = {
    "choice": "string",
    "date": "string",
    "time": "string",
    "code": "string",
    "int": "integer",
    "number": "number",
    "bool": "boolean",
}
ENUM_MAX = 6  # choice domains this small are listed as an enum in the tool schema
_FORBIDDEN_VALUE_CHARS = frozenset('"\\{}[]')


@dataclass(frozen=True)
class Domain:
    """A set of values an argument or a tool result can take."""

    name: str
    kind: str  # one of JSON_TYPES
    values: tuple[str, ...] = ()
    low: float = 0
    high: float = 0
    step: float = 1
    prefix: str = ""
    digits: int = 0

    @property
    def json_type(self) -> str:
        """JSON-schema type of the values."""
        return JSON_TYPES[self.kind]

    def sample(self, rng: random.Random) -> Any:
        """Draw one value."""
        kind = self.kind
        if kind == "choice":
            return rng.choice(self.values)
        if kind == "int":
            return rng.randrange(int(self.low), int(self.high) + 1, int(self.step))
        if kind == "number":
            n_steps = round((self.high - self.low) / self.step)
            return round(self.low + rng.randint(0, n_steps) * self.step, 4)
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "date":
            return f"{int(self.low) + rng.randint(0, int(self.high - self.low))}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if kind == "time":
            return f"{rng.randint(6, 21):02d}:{rng.choice(('00', '15', '30', '45'))}"
        if kind == "code":
            return self.prefix + "".join(rng.choice(string.digits) for _ in range(self.digits))
        raise ValueError(
            f"domain {self.name!r}: kind={kind!r} is unknown; use one of {sorted(JSON_TYPES)}"
        )


@dataclass(frozen=True)
class Param:
    """A tool parameter: its value domain and how a user request mentions it when optional."""

    name: str
    domain: str
    required: bool = True
    phrase: str = (
        ""  # clause appended to the request when an optional value is given, e.g. "in {unit}"
    )
    phrase_false: str = ""  # for booleans: the clause when the value is false
    array: bool = False  # a list of 2-3 distinct values of the domain


@dataclass(frozen=True)
class ToolSpec:
    """A tool: name, description, parameters, how users ask for it and how answers report it."""

    name: str
    description: str
    params: tuple[Param, ...]
    tasks: tuple[str, ...]  # imperative request phrasings; mention every required parameter
    purposes: tuple[str, ...]  # noun phrases for thoughts ("the weather in {city}")
    outputs: tuple[tuple[str, str], ...]  # (result field, domain)
    answer: str  # answer clause; may use parameters and result fields

    def param(self, name: str) -> Param:
        """The parameter called `name`."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"tool {self.name!r} has no parameter {name!r}")


@functools.lru_cache(maxsize=4096)
def template_pieces(template: str) -> tuple[tuple[str, str | None], ...]:
    """Split "a {x} b" into (("a ", None), ("", "x"), (" b", None)): (literal, field) pieces."""
    pieces: list[tuple[str, str | None]] = []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append((literal, None))
        if field_name is not None:
            pieces.append(("", field_name))
    return tuple(pieces)


def template_fields(template: str) -> set[str]:
    """Names of the {fields} a template uses."""
    return {f for _, f in template_pieces(template) if f is not None}


def render_value(value: Any) -> str:
    """How a value reads in prose: strings as is, lists as "a, b and c", numbers as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = [render_value(v) for v in value]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return json.dumps(value)


@dataclass
class World:
    """Tools and value domains; `seed` fixes the world's facts (what each tool returns)."""

    tools: tuple[ToolSpec, ...]
    domains: dict[str, Domain]
    seed: int = 0
    _by_name: dict[str, ToolSpec] = field(init=False, repr=False)
    _schema_json: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tools:
            raise ValueError("World(tools=()) has no tools; pass at least one ToolSpec")
        self._by_name = {}
        for tool in self.tools:
            if tool.name in self._by_name:
                raise ValueError(
                    f"World: tool name {tool.name!r} appears twice; tool names must be unique"
                )
            self._check_tool(tool)
            self._by_name[tool.name] = tool
        for domain in self.domains.values():
            self._check_domain(domain)
        self._schema_json = {t.name: json.dumps(self.tool_schema(t)) for t in self.tools}

    def _check_domain(self, domain: Domain) -> None:
        if domain.kind not in JSON_TYPES:
            raise ValueError(
                f"domain {domain.name!r}: kind={domain.kind!r} is unknown; use one of {sorted(JSON_TYPES)}"
            )
        for value in domain.values:
            if (
                not value
                or not value.isascii()
                or not value.isprintable()
                or set(value) & _FORBIDDEN_VALUE_CHARS
            ):
                raise ValueError(
                    f"domain {domain.name!r}: value {value!r} must be non-empty printable ASCII "
                    "without quotes, backslashes or brackets (so it serialises to JSON verbatim)"
                )

    def _check_tool(self, tool: ToolSpec) -> None:
        required = {p.name for p in tool.params if p.required}
        for p in tool.params:
            if p.domain not in self.domains:
                raise ValueError(
                    f"tool {tool.name!r}: parameter {p.name!r} uses unknown domain {p.domain!r}"
                )
            if not p.required and not p.phrase:
                raise ValueError(
                    f"tool {tool.name!r}: optional parameter {p.name!r} needs a phrase"
                )
        for task in tool.tasks:
            if template_fields(task) != required:
                raise ValueError(
                    f"tool {tool.name!r}: task {task!r} must mention exactly the required parameters {sorted(required)}"
                )
        # Purposes and answers may only use values every call has: the required ones.
        for purpose in tool.purposes:
            if not template_fields(purpose) <= required:
                raise ValueError(
                    f"tool {tool.name!r}: purpose {purpose!r} may use only required parameters"
                )
        outputs = {name for name, _ in tool.outputs}
        if not template_fields(tool.answer) <= required | outputs:
            raise ValueError(
                f"tool {tool.name!r}: answer {tool.answer!r} may use only required parameters and outputs"
            )
        for _, domain in tool.outputs:
            if domain not in self.domains:
                raise ValueError(f"tool {tool.name!r}: output uses unknown domain {domain!r}")

    @property
    def tool_names(self) -> list[str]:
        """Names of all tools, in catalog order."""
        return [t.name for t in self.tools]

    def tool(self, name: str) -> ToolSpec:
        """The tool called `name`."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"the world has no tool {name!r}") from None

    def tool_schema(self, tool: ToolSpec) -> dict[str, Any]:
        """JSON-schema-ish description of a tool, as shown in system prompts."""
        properties: dict[str, Any] = {}
        for p in tool.params:
            domain = self.domains[p.domain]
            prop: dict[str, Any] = {"type": domain.json_type}
            if domain.kind == "choice" and len(domain.values) <= ENUM_MAX:
                prop["enum"] = list(domain.values)
            if domain.kind in ("int", "number"):
                prop["minimum"], prop["maximum"] = (
                    _plain_number(domain.low),
                    _plain_number(domain.high),
                )
            if domain.kind == "date":
                prop["format"] = "YYYY-MM-DD"
            if p.array:
                prop = {"type": "array", "items": prop}
            properties[p.name] = prop
        return {
            "name": tool.name,
            "description": tool.description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [p.name for p in tool.params if p.required],
            },
        }

    def tool_schema_json(self, name: str) -> str:
        """Cached `json.dumps` of a tool's schema."""
        return self._schema_json[name]

    def sample_arguments(
        self, tool: ToolSpec, rng: random.Random, optional_rate: float = 0.4
    ) -> dict[str, Any]:
        """Draw arguments for a call: every required parameter, each optional one with `optional_rate`."""
        args: dict[str, Any] = {}
        for p in tool.params:
            if not p.required and rng.random() >= optional_rate:
                continue
            domain = self.domains[p.domain]
            if p.array:
                k = min(rng.randint(2, 3), len(domain.values))
                args[p.name] = rng.sample(list(domain.values), k)
            else:
                args[p.name] = domain.sample(rng)
        return args

    def observe(self, tool: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's result for these arguments: a fixed fact of this world (same call, same result)."""
        key = f"{self.seed}|{tool.name}|{json.dumps(arguments, sort_keys=True)}"
        rng = random.Random(key)
        return {name: self.domains[domain].sample(rng) for name, domain in tool.outputs}


def _plain_number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x
