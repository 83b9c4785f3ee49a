"""Render SHAD labels as coloured tokens: ANSI for a terminal, a standalone HTML page, or plain markers.

Token text comes from training data and may hold markup or terminal control sequences: the HTML
is escaped with `html.escape`, and control/format characters are shown as `\\xNN`/`\\uNNNN`
escapes in every output, so nothing in the data can drive the terminal or the page.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rft_trl.loss import IGNORE_INDEX

ANSI = {
    "context": "\x1b[2m",  # dim
    "boilerplate": "\x1b[36m",  # cyan
    "reasoning": "\x1b[1;33m",  # bold yellow
    "wrong": "\x1b[4m",  # underline: disagrees with the ground truth
    "reset": "\x1b[0m",
}
# Without colour: reasoning tokens in ⟦ ⟧; a token that disagrees with the ground truth is followed by ‼.
PLAIN_OPEN, PLAIN_CLOSE, PLAIN_WRONG = "⟦", "⟧", "‼"
PROMPT_TAIL_TOKENS = 24


def safe_text(text: str) -> str:
    """`text` with control, format and unassigned characters escaped (newline and tab kept)."""
    out = []
    for char in text:
        if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


class TokenText:
    """Decodes token ids one by one (cached), or shows `<id>` without a tokenizer."""

    def __init__(self, tokenizer: Any | None) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        if token_id not in self.cache:
            if self.tokenizer is None:
                self.cache[token_id] = f"<{token_id}>"
            else:
                self.cache[token_id] = safe_text(
                    self.tokenizer.decode(
                        [token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False
                    )
                )
        return self.cache[token_id]


@dataclass
class Agreement:
    """SHAD labels against ground truth over response tokens (reasoning is the positive class)."""

    tokens: int
    correct: int
    true_pos: int
    false_pos: int
    false_neg: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.tokens if self.tokens else 0.0

    @property
    def precision(self) -> float:
        return (
            self.true_pos / (self.true_pos + self.false_pos)
            if self.true_pos + self.false_pos
            else 0.0
        )

    @property
    def recall(self) -> float:
        return (
            self.true_pos / (self.true_pos + self.false_neg)
            if self.true_pos + self.false_neg
            else 0.0
        )

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        """One-line summary."""
        return (
            f"against ground truth ({self.tokens} response tokens): accuracy {100 * self.accuracy:.1f}%, "
            f"reasoning precision {self.precision:.2f} recall {self.recall:.2f} F1 {self.f1:.2f}"
        )


def agreement(predicted: Sequence[Sequence[int]], truth: Sequence[Sequence[int]]) -> Agreement:
    """Token-level agreement of predicted and ground-truth classes, over positions in the loss."""
    pred = np.concatenate([np.asarray(p) for p in predicted]) if predicted else np.zeros(0)
    gold = np.concatenate([np.asarray(t) for t in truth]) if truth else np.zeros(0)
    mask = (pred != IGNORE_INDEX) & (gold != IGNORE_INDEX)
    p, g = pred[mask] == 1, gold[mask] == 1
    return Agreement(
        tokens=int(mask.sum()),
        correct=int((p == g).sum()),
        true_pos=int((p & g).sum()),
        false_pos=int((p & ~g).sum()),
        false_neg=int((~p & g).sum()),
    )


@dataclass
class Row:
    """One labelled row to render."""

    index: int
    input_ids: list[int]
    token_class: list[int]
    l_o: list[float] | None = None
    l_s: list[float] | None = None
    gt_class: list[int] | None = None


def _has_truth(rows: Sequence[Row]) -> bool:
    """Whether any row carries ground-truth classes (synthetic data): only then can a label
    disagree with the truth, and only then does the legend say so."""
    return any(row.gt_class is not None for row in rows)


def _kind(cls: int) -> str:
    return "context" if cls == IGNORE_INDEX else ("reasoning" if cls == 1 else "boilerplate")


def _start(row: Row) -> int:
    """Where rendering starts: a short tail of the leading prompt, the rest is summarised."""
    first = next(
        (i for i, c in enumerate(row.token_class) if c != IGNORE_INDEX), len(row.token_class)
    )
    return max(0, first - PROMPT_TAIL_TOKENS)


def render_terminal(rows: Sequence[Row], tokenizer: Any | None, color: bool) -> str:
    """The rows as text: ANSI colours when `color`, else ⟦reasoning⟧ and ‼ markers."""
    text = TokenText(tokenizer)
    truth = _has_truth(rows)
    if color:
        legend = (
            f"{ANSI['boilerplate']}boilerplate{ANSI['reset']}  {ANSI['reasoning']}reasoning{ANSI['reset']}  "
            f"{ANSI['context']}not in the loss{ANSI['reset']}"
        )
        if truth:
            legend += f"  {ANSI['wrong']}underlined{ANSI['reset']}: disagrees with the ground truth"
    else:
        legend = f"{PLAIN_OPEN}reasoning{PLAIN_CLOSE}, other response tokens are boilerplate"
        if truth:
            legend += f"; {PLAIN_WRONG}: disagrees with the ground truth"
    out = [legend]
    for row in rows:
        start = _start(row)
        header = f"--- sample {row.index}"
        if start:
            header += f" ({start} prompt tokens not shown)"
        out.append(header + " ---")
        pieces = []
        open_group = False
        for pos in range(start, len(row.input_ids)):
            cls = row.token_class[pos]
            piece = text(row.input_ids[pos])
            wrong = (
                row.gt_class is not None
                and cls != IGNORE_INDEX
                and row.gt_class[pos] != IGNORE_INDEX
                and row.gt_class[pos] != cls
            )
            if color:
                style = ANSI[_kind(cls)] + (ANSI["wrong"] if wrong else "")
                pieces.append(f"{style}{piece}{ANSI['reset']}")
                continue
            if cls == 1 and not open_group:
                pieces.append(PLAIN_OPEN)
                open_group = True
            elif cls != 1 and open_group:
                pieces.append(PLAIN_CLOSE)
                open_group = False
            pieces.append(piece + (PLAIN_WRONG if wrong else ""))
        if open_group:
            pieces.append(PLAIN_CLOSE)
        out.append("".join(pieces))
    return "\n".join(out) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.legend span, .tokens span { border-radius: 2px; }
.tokens { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.6;
          border: 1px solid #ddd; padding: 1em; margin-bottom: 1.5em; }
.c { color: #999; }
.b { background: #dbeafe; }
.r { background: #fde68a; font-weight: 600; }
.x { text-decoration: underline wavy #dc2626; text-decoration-thickness: 2px; }
h2 { font-size: 1em; margin-bottom: .3em; }
"""


def _title(row: Row, pos: int) -> str:
    cls = row.token_class[pos]
    if cls == IGNORE_INDEX:
        return "not in the loss"
    parts = [_kind(cls)]
    if row.l_o is not None and row.l_s is not None:
        parts.append(
            f"LD={row.l_s[pos] - row.l_o[pos]:+.4f} l_o={row.l_o[pos]:.4f} l_s={row.l_s[pos]:.4f}"
        )
    if row.gt_class is not None and row.gt_class[pos] != IGNORE_INDEX:
        parts.append(f"truth: {_kind(row.gt_class[pos])}")
    return " | ".join(parts)


def render_html(rows: Sequence[Row], tokenizer: Any | None, title: str, summary: str = "") -> str:
    """A standalone HTML page: tokens coloured by class, LD on hover, a legend, truth mismatches underlined."""
    text = TokenText(tokenizer)
    body = []
    for row in rows:
        start = _start(row)
        spans = []
        for pos in range(start, len(row.input_ids)):
            cls = row.token_class[pos]
            css = {"context": "c", "boilerplate": "b", "reasoning": "r"}[_kind(cls)]
            if (
                row.gt_class is not None
                and cls != IGNORE_INDEX
                and row.gt_class[pos] != IGNORE_INDEX
                and row.gt_class[pos] != cls
            ):
                css += " x"
            spans.append(
                f'<span class="{css}" title="{html.escape(_title(row, pos), quote=True)}">'
                f"{html.escape(text(row.input_ids[pos]), quote=True)}</span>"
            )
        skipped = f" ({start} prompt tokens not shown)" if start else ""
        body.append(
            f'<h2>sample {row.index}{skipped}</h2><div class="tokens">{"".join(spans)}</div>'
        )
    mismatch = (
        ' <span class="x">wavy underline</span>: disagrees with the ground truth.'
        if _has_truth(rows)
        else ""
    )
    legend = (
        '<p class="legend"><span class="b">boilerplate</span> <span class="r">reasoning</span> '
        f'<span class="c">not in the loss</span>{mismatch} Hover a token for LD = l_s - l_o.</p>'
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{legend}<pre>{html.escape(summary)}</pre>{''.join(body)}</body></html>\n"
    )
