"""TRL-ready `datasets.Dataset`s of the corpus: conversational `messages` and `prompt`/`completion` forms.

Besides the TRL columns every row keeps what maps it back to its sample: `sample_id`, `family`,
`gt_spans` (per assistant message of the row, [start, end, category_id] triples over the content)
and `expected_calls` (JSON of the call(s) a correct first response makes). SFTTrainer keeps these
columns through tokenization and drops them only when batching.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from rft_trl.synthetic.corpus import Sample, generate_samples
from rft_trl.synthetic.world import World

FORMS: tuple[str, ...] = ("messages", "prompt_completion")


def _common(sample: Sample) -> dict[str, object]:
    return {
        "sample_id": sample.sample_id,
        "family": sample.family,
        "expected_calls": json.dumps([c.to_dict() for c in sample.expected_calls]),
    }


def to_messages_dataset(samples: Sequence[Sample]) -> Dataset:
    """Full multi-turn traces as `messages` (train with `assistant_only_loss=True`)."""
    rows = [
        {
            **_common(s),
            "messages": s.messages,
            "gt_spans": [[span.as_triple() for span in spans] for spans in s.assistant_spans],
        }
        for s in samples
    ]
    return Dataset.from_list(rows)


def to_prompt_completion_dataset(samples: Sequence[Sample]) -> Dataset:
    """Conversational prompt (messages before the first assistant turn) and completion (that turn)."""
    rows = []
    for s in samples:
        first = s.first_assistant_index
        rows.append(
            {
                **_common(s),
                "prompt": s.messages[:first],
                "completion": [s.messages[first]],
                "gt_spans": [[span.as_triple() for span in s.assistant_spans[0]]],
            }
        )
    return Dataset.from_list(rows)


def to_dataset(samples: Sequence[Sample], form: str = "messages") -> Dataset:
    """Either form by name: "messages" or "prompt_completion"."""
    if form == "messages":
        return to_messages_dataset(samples)
    if form == "prompt_completion":
        return to_prompt_completion_dataset(samples)
    raise ValueError(f"form={form!r} is unknown; pass one of {FORMS}")


def prompt_messages(example: Sample | Mapping[str, Any]) -> list[dict[str, str]]:
    """Messages to generate the first response from, for a Sample or a row of either form."""
    if isinstance(example, Sample):
        return example.prompt_messages
    if "prompt" in example:
        return list(example["prompt"])
    if "messages" not in example:
        raise ValueError(f"example has columns {sorted(example)}; expected 'messages' or 'prompt'")
    messages = list(example["messages"])
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:first]


def make_split_samples(
    n_train: int,
    n_test: int,
    *,
    family: str = "mixed",
    seed: int = 0,
    world: World | None = None,
    **corpus_kwargs: int | float,
) -> tuple[list[Sample], list[Sample]]:
    """Train and held-out samples from disjoint seed streams; test prompts never repeat a train prompt."""
    if isinstance(n_test, bool) or not isinstance(n_test, int) or n_test < 0:
        raise ValueError(f"n_test={n_test!r} must be a non-negative integer")
    train = generate_samples(n_train, family, seed, world=world, split="train", **corpus_kwargs)
    seen = {_prompt_key(s) for s in train}
    test: list[Sample] = []
    batch = max(n_test, 16)
    start = 0
    while len(test) < n_test:
        candidates = generate_samples(
            batch, family, seed, world=world, split="test", offset=start, **corpus_kwargs
        )
        for s in candidates:
            key = _prompt_key(s)
            if key not in seen and len(test) < n_test:
                seen.add(key)
                test.append(s)
        start += batch
        if start > 10 * n_test + 1000:
            raise ValueError(
                f"could not find {n_test} held-out prompts unseen in training; the world is too small for "
                f"n_train={n_train}; lower n_train/n_test or use a larger world"
            )
    return train, test


def _prompt_key(sample: Sample) -> str:
    return json.dumps(sample.prompt_messages)


def make_splits(
    n_train: int,
    n_test: int,
    *,
    form: str = "messages",
    family: str = "mixed",
    seed: int = 0,
    world: World | None = None,
    **corpus_kwargs: int | float,
) -> DatasetDict:
    """A DatasetDict with "train" and "test" in `form`; held-out prompts are disjoint from training ones."""
    if form not in FORMS:
        raise ValueError(f"form={form!r} is unknown; pass one of {FORMS}")
    train, test = make_split_samples(
        n_train, n_test, family=family, seed=seed, world=world, **corpus_kwargs
    )
    return DatasetDict({"train": to_dataset(train, form), "test": to_dataset(test, form)})
