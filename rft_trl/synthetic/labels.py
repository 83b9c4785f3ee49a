"""Ground-truth token roles and categories, and a text builder that records them per character."""

from __future__ import annotations

from typing import NamedTuple

BOILERPLATE = 0
REASONING = 1
IGNORE_INDEX = -100

# Category ids are stored in datasets, so the order is part of the data format: append only.
CATEGORIES: tuple[str, ...] = (
    "format",  # format keywords ("Thought:", "Action Input:"), JSON punctuation and keys, newlines
    "stock_phrase",  # interchangeable stock wording ("I will call", "Here is what I found:")
    "tool_name",  # which tool is called
    "argument_value",  # the value of a call argument
    "purpose",  # sample-specific words of thoughts and answers
    "template",  # tokens in the loss but outside message content (e.g. the end-of-turn token)
)
CATEGORY_ID: dict[str, int] = {name: i for i, name in enumerate(CATEGORIES)}
REASONING_CATEGORIES: frozenset[str] = frozenset({"tool_name", "argument_value", "purpose"})
REASONING_CATEGORY_IDS: frozenset[int] = frozenset(CATEGORY_ID[c] for c in REASONING_CATEGORIES)


def category_role(category: str) -> int:
    """Role (BOILERPLATE or REASONING) of a category name."""
    if category not in CATEGORY_ID:
        raise ValueError(f"category={category!r} is unknown; use one of {CATEGORIES}")
    return REASONING if category in REASONING_CATEGORIES else BOILERPLATE


class Span(NamedTuple):
    """A run of characters [start, end) of one message content with one category."""

    start: int
    end: int
    category: str

    @property
    def role(self) -> int:
        """BOILERPLATE or REASONING."""
        return category_role(self.category)

    def as_triple(self) -> list[int]:
        """Compact [start, end, category_id] form stored in datasets."""
        return [self.start, self.end, CATEGORY_ID[self.category]]

    @classmethod
    def from_triple(cls, triple: list[int] | tuple[int, int, int]) -> Span:
        """Inverse of `as_triple`."""
        start, end, category_id = triple
        return cls(int(start), int(end), CATEGORIES[int(category_id)])


class TextBuilder:
    """Appends text pieces with a category each, so the role of every character is known."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._spans: list[tuple[int, int, str]] = []
        self._length = 0

    def add(self, text: str, category: str) -> TextBuilder:
        """Append `text` as one span of `category` (empty text is ignored)."""
        if text:
            if category not in CATEGORY_ID:
                raise ValueError(f"category={category!r} is unknown; use one of {CATEGORIES}")
            end = self._length + len(text)
            self._parts.append(text)
            self._spans.append((self._length, end, category))
            self._length = end
        return self

    def fmt(self, text: str) -> TextBuilder:
        """Append format text."""
        return self.add(text, "format")

    def stock(self, text: str) -> TextBuilder:
        """Append stock phrasing."""
        return self.add(text, "stock_phrase")

    def build(self) -> tuple[str, list[Span]]:
        """The content string and its spans; consecutive boilerplate spans of one category merge."""
        merged: list[Span] = []
        for start, end, category in self._spans:
            # Reasoning spans stay separate: each is one unit (a value, a name) whose first
            # token is reported apart from its inner tokens.
            if merged and merged[-1].category == category and category not in REASONING_CATEGORIES:
                merged[-1] = Span(merged[-1].start, end, category)
            else:
                merged.append(Span(start, end, category))
        return "".join(self._parts), merged
