"""Per-token ground truth (role, category, span-first) aligned with a tokenized, possibly truncated sequence.

Token character offsets come from decoding every token on its own (exact for byte-level BPE on
ASCII text); the decoded sequence is located in the conversation as the chat template renders it,
and every assistant content is located there in order. This works for any template that renders
message contents verbatim and for sequences cut by either truncation side.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import List, Value

from rft_trl.synthetic.corpus import Sample
from rft_trl.synthetic.labels import (
    CATEGORIES,
    CATEGORY_ID,
    IGNORE_INDEX,
    REASONING_CATEGORY_IDS,
    Span,
)

_TEMPLATE_ID = CATEGORY_ID["template"]
_REASONING_MASK = np.array([i in REASONING_CATEGORY_IDS for i in range(len(CATEGORIES))])
_token_text_cache: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class TokenGroundTruth:
    """Per-token ground truth; every list is aligned with input_ids and holds -100 outside the loss."""

    token_class: list[int]  # 1 reasoning (any character of the token is reasoning), 0 boilerplate
    category: list[int]  # index into labels.CATEGORIES
    span_first: list[int]  # 1 if the token holds the first character of a reasoning span


def conversation_of(
    example: Sample | Mapping[str, Any],
) -> tuple[list[dict[str, str]], list[list[Span]]]:
    """Messages and per-assistant-message spans of a Sample or a dataset row (either form)."""
    if isinstance(example, Sample):
        return example.messages, example.assistant_spans
    if "messages" in example:
        messages = list(example["messages"])
    elif "prompt" in example and "completion" in example:
        messages = list(example["prompt"]) + list(example["completion"])
    else:
        raise ValueError(
            f"example has columns {sorted(example)}; expected 'messages' or 'prompt'+'completion' "
            "(rows of to_messages_dataset / to_prompt_completion_dataset), or pass the Sample"
        )
    if "gt_spans" not in example:
        raise ValueError(
            "example has no 'gt_spans' column; keep it in the dataset or pass samples="
        )
    spans = [[Span.from_triple(t) for t in message_spans] for message_spans in example["gt_spans"]]
    return messages, spans


def token_texts(tokenizer: Any) -> list[str]:
    """The text of every token id decoded on its own (cached per tokenizer)."""
    try:
        return _token_text_cache[tokenizer]
    except (KeyError, TypeError):
        pass
    ids = [[i] for i in range(len(tokenizer))]
    texts = tokenizer.batch_decode(
        ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    with contextlib.suppress(TypeError):  # an unhashable tokenizer is simply not cached
        _token_text_cache[tokenizer] = texts
    return texts


def _char_labels(
    text: str, messages: Sequence[Mapping[str, Any]], assistant_spans: Sequence[Sequence[Span]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per character of the rendered conversation: category id, and whether a reasoning span starts there."""
    category = np.full(len(text), _TEMPLATE_ID, dtype=np.int8)
    span_start = np.zeros(len(text), dtype=bool)
    n_assistant = sum(m["role"] == "assistant" for m in messages)
    if n_assistant != len(assistant_spans):
        raise ValueError(
            f"the conversation has {n_assistant} assistant messages but {len(assistant_spans)} span lists; "
            "pass the spans that belong to these messages"
        )
    cursor, k = 0, 0
    for message in messages:
        content = message["content"]
        if not content:
            k += message["role"] == "assistant"
            continue
        pos = text.find(content, cursor)
        if pos < 0:
            raise ValueError(
                f"the {message['role']} message {content[:40]!r}... is not in the rendered conversation in order; "
                "the chat template must render message contents verbatim"
            )
        cursor = pos + len(content)
        if message["role"] == "assistant":
            for span in assistant_spans[k]:
                cid = CATEGORY_ID[span.category]
                category[pos + span.start : pos + span.end] = cid
                if cid in REASONING_CATEGORY_IDS:
                    span_start[pos + span.start] = True
            k += 1
    return category, span_start


def _sequence_offset(rendered: str, decoded: str) -> int:
    # keep_start truncation leaves a prefix, keep_end a suffix; check those first so a short
    # fragment that also occurs elsewhere is placed where truncation actually left it.
    if rendered.startswith(decoded):
        return 0
    if rendered.endswith(decoded):
        return len(rendered) - len(decoded)
    pos = rendered.find(decoded)
    if pos < 0:
        raise ValueError(
            "the token sequence does not decode to a part of the rendered conversation; tokenize with the "
            "same tokenizer and chat template (pass chat_template= if the trainer swapped it)"
        )
    return pos


def _in_loss(n: int, labels: Sequence[int] | None, loss_mask: Sequence[int] | None) -> np.ndarray:
    if labels is not None:
        if len(labels) != n:
            raise ValueError(
                f"labels has {len(labels)} entries but input_ids has {n}; pass aligned sequences"
            )
        return np.asarray(labels) != IGNORE_INDEX
    if loss_mask is not None:
        if len(loss_mask) != n:
            raise ValueError(
                f"loss_mask has {len(loss_mask)} entries but input_ids has {n}; pass aligned sequences"
            )
        return np.asarray(loss_mask, dtype=bool)
    return np.ones(n, dtype=bool)


def ground_truth_token_class(
    tokenizer: Any,
    example: Sample | Mapping[str, Any],
    input_ids: Sequence[int],
    labels: Sequence[int] | None = None,
    *,
    loss_mask: Sequence[int] | None = None,
    chat_template: str | None = None,
) -> TokenGroundTruth:
    """Role, category and span-first flag per token of `input_ids`; -100 outside the loss (labels or loss_mask)."""
    messages, spans = conversation_of(example)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template)
    char_category, char_span_start = _char_labels(rendered, messages, spans)

    table = token_texts(tokenizer)
    pieces = [table[i] for i in input_ids]
    decoded = "".join(pieces)
    offset = _sequence_offset(rendered, decoded)
    ends = offset + np.cumsum([len(p) for p in pieces], dtype=np.int64)
    starts = ends - np.array([len(p) for p in pieces], dtype=np.int64)

    window = slice(offset, offset + len(decoded))
    one_hot = np.zeros((len(decoded) + 1, len(CATEGORIES)), dtype=np.int32)
    one_hot[np.arange(1, len(decoded) + 1), char_category[window]] = 1
    counts_cum = np.cumsum(one_hot, axis=0)
    first_cum = np.concatenate([[0], np.cumsum(char_span_start[window])])
    lo, hi = starts - offset, ends - offset
    counts = counts_cum[hi] - counts_cum[lo]  # (n_tokens, n_categories) characters per category

    reasoning_counts = np.where(_REASONING_MASK, counts, -1)
    boilerplate_counts = np.where(_REASONING_MASK, -1, counts)
    is_reasoning = (counts * _REASONING_MASK).sum(axis=1) > 0
    category = np.where(
        is_reasoning, reasoning_counts.argmax(axis=1), boilerplate_counts.argmax(axis=1)
    )
    category = np.where(hi > lo, category, _TEMPLATE_ID)
    span_first = (first_cum[hi] - first_cum[lo]) > 0

    in_loss = _in_loss(len(input_ids), labels, loss_mask)
    token_class = np.where(in_loss, is_reasoning.astype(np.int64), IGNORE_INDEX)
    return TokenGroundTruth(
        token_class=token_class.tolist(),
        category=np.where(in_loss, category, IGNORE_INDEX).tolist(),
        span_first=np.where(in_loss, span_first.astype(np.int64), IGNORE_INDEX).tolist(),
    )


def _row_loss_inputs(row: Mapping[str, Any]) -> tuple[Sequence[int] | None, Sequence[int] | None]:
    if row.get("labels") is not None:
        return row["labels"], None
    masks = [row[c] for c in ("assistant_masks", "completion_mask") if row.get(c) is not None]
    if not masks:
        return None, None
    return None, [int(all(bits)) for bits in zip(*masks, strict=True)]


def add_ground_truth_columns(
    dataset: Any,
    tokenizer: Any,
    samples: Sequence[Sample] | None = None,
    *,
    chat_template: str | None = None,
    num_proc: int | None = None,
) -> Any:
    """Add gt_class, gt_category, gt_span_first (int8 per token) to a tokenized dataset.

    Rows need `input_ids` and `labels` (or `assistant_masks`/`completion_mask`), and either their own
    conversation columns with `gt_spans` or a `sample_id` found in `samples`.
    """
    by_id = {s.sample_id: s for s in samples} if samples is not None else None
    if "input_ids" not in dataset.column_names:
        raise ValueError(
            f"dataset has columns {dataset.column_names} but no 'input_ids'; tokenize it first"
        )

    def label_row(row: dict[str, Any]) -> dict[str, list[int]]:
        example = by_id[row["sample_id"]] if by_id is not None else row
        labels, mask = _row_loss_inputs(row)
        gt = ground_truth_token_class(
            tokenizer,
            example,
            row["input_ids"],
            labels,
            loss_mask=mask,
            chat_template=chat_template,
        )
        return {
            "gt_class": gt.token_class,
            "gt_category": gt.category,
            "gt_span_first": gt.span_first,
        }

    features = dataset.features.copy()
    for column in ("gt_class", "gt_category", "gt_span_first"):
        features[column] = List(Value("int8"))
    return dataset.map(
        label_row, features=features, num_proc=num_proc, desc="Aligning ground truth"
    )


def tokenize_example(
    tokenizer: Any,
    example: Sample | Mapping[str, Any],
    *,
    form: str = "messages",
    max_length: int | None = None,
) -> dict[str, list[int]]:
    """Tokenize like TRL's SFTTrainer: -100 outside assistant turns or the completion; keep_start truncation."""
    messages, _ = conversation_of(example)
    if form == "messages":
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        mask = out["assistant_masks"]
    elif form == "prompt_completion":
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = tokenizer.apply_chat_template(
            messages[:first], tokenize=True, return_dict=True, add_generation_prompt=True
        )["input_ids"]
        out = tokenizer.apply_chat_template(messages[: first + 1], tokenize=True, return_dict=True)
        mask = [0] * len(prompt) + [1] * (len(out["input_ids"]) - len(prompt))
    else:
        raise ValueError(f"form={form!r} is unknown; pass 'messages' or 'prompt_completion'")
    input_ids = list(out["input_ids"])
    labels = [t if m else IGNORE_INDEX for t, m in zip(input_ids, mask, strict=True)]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}
