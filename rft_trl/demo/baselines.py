"""Alternative token labels for the evidence benchmark: ground truth, one group, random, format rules (regex).

Each function returns one `token_class` list per row (-100 outside the loss, 0 boilerplate,
1 reasoning), ready to replace SHAD's column.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import numpy as np

from rft_trl.synthetic import CATEGORIES, CATEGORY_ID, IGNORE_INDEX, REASONING

# The paper's Regex baseline: format keywords, JSON punctuation and JSON keys are boilerplate,
# everything else is reasoning. Stock phrasing is not a format rule, so it counts as reasoning.
FORMAT_RULES = re.compile(
    r"Thought:|Action Input:|Action:|Final Answer:"  # ReAct keywords
    r'|"[A-Za-z_][A-Za-z0-9_]*":'  # JSON keys
    r"|[\[\]{}\",:]"  # JSON punctuation
    r"|\s+"  # whitespace and newlines
)


def ground_truth_labels(
    gt_class: Sequence[Sequence[int]],
    gt_category: Sequence[Sequence[int]] | None = None,
    as_reasoning: Collection[str] = (),
) -> list[list[int]]:
    """The ground-truth classes as labels (the upper bound: perfect labels).

    `as_reasoning` names boilerplate categories whose tokens go to the reasoning group instead
    (needs `gt_category`): which boilerplate category's lower weight costs what.
    """
    unknown = sorted(set(as_reasoning) - set(CATEGORY_ID))
    if unknown:
        raise ValueError(f"as_reasoning={unknown} are not categories; use some of {CATEGORIES}")
    if not as_reasoning:
        return [list(row) for row in gt_class]
    if gt_category is None:
        raise ValueError("as_reasoning needs gt_category (the dataset's 'gt_category' column)")
    moved = {CATEGORY_ID[name] for name in as_reasoning}
    return [
        [REASONING if c in moved and k != IGNORE_INDEX else k for k, c in zip(ks, cs, strict=True)]
        for ks, cs in zip(gt_class, gt_category, strict=True)
    ]


def one_group_labels(labels: Sequence[Sequence[int]]) -> list[list[int]]:
    """Every response token reasoning: RFT then weighs each sample's mean token loss equally,
    which is SFT averaged per sample instead of per token (separates RFT's two effects)."""
    return [[IGNORE_INDEX if t == IGNORE_INDEX else REASONING for t in row] for row in labels]


def random_labels(
    labels: Sequence[Sequence[int]], boilerplate_fraction: float, seed: int
) -> list[list[int]]:
    """Each response token boilerplate with probability `boilerplate_fraction`, independently (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    for row in labels:
        row = np.asarray(row)
        classes = (rng.random(len(row)) >= boilerplate_fraction).astype(np.int64)
        out.append(np.where(row == IGNORE_INDEX, IGNORE_INDEX, classes).tolist())
    return out


def format_rule_mask(text: str) -> np.ndarray:
    """Per character of `text`: True where a format rule (keyword, JSON key/punctuation, whitespace) matches."""
    mask = np.zeros(len(text), dtype=bool)
    for match in FORMAT_RULES.finditer(text):
        mask[match.start() : match.end()] = True
    return mask


def regex_labels(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], token_texts: Sequence[str]
) -> list[list[int]]:
    """Boilerplate where every character of the token matches a format rule (special tokens too), else reasoning."""
    out = []
    for ids, row in zip(input_ids, labels, strict=True):
        positions = [i for i, label in enumerate(row) if label != IGNORE_INDEX]
        pieces = [token_texts[ids[i]] for i in positions]
        mask = format_rule_mask("".join(pieces))
        classes = [IGNORE_INDEX] * len(row)
        start = 0
        for pos, piece in zip(positions, pieces, strict=True):
            special = piece.startswith("<|") and piece.endswith("|>")
            covered = special or bool(mask[start : start + len(piece)].all())
            classes[pos] = 0 if covered else 1
            start += len(piece)
        out.append(classes)
    return out
