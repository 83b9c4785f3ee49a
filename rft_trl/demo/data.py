"""The demo's data: synthetic train/held-out splits, tokenized like SFTTrainer does, with per-token ground truth."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from rft_trl.synthetic import (
    Sample,
    add_ground_truth_columns,
    make_split_samples,
    to_dataset,
    tokenize_example,
)

FORM = "prompt_completion"  # the first assistant turn: what the evaluator scores


@dataclass
class Splits:
    """Training and held-out samples with their tokenized, ground-truth-labelled datasets."""

    train_samples: list[Sample]
    test_samples: list[Sample]
    train: (
        Dataset  # input_ids, labels, gt_class, gt_category, gt_span_first, family, sample_id, ...
    )
    test: Dataset


def tokenized(
    samples: list[Sample], tokenizer: PreTrainedTokenizerBase, max_length: int | None
) -> Dataset:
    """Prompt/completion rows with `input_ids`/`labels` (-100 on the prompt) and ground-truth columns."""
    data = to_dataset(samples, FORM)
    rows = [tokenize_example(tokenizer, s, form=FORM, max_length=max_length) for s in samples]
    data = data.add_column("input_ids", [r["input_ids"] for r in rows])
    data = data.add_column("labels", [r["labels"] for r in rows])
    return add_ground_truth_columns(data, tokenizer)


def make_data(
    tokenizer: PreTrainedTokenizerBase,
    n_train: int,
    n_test: int,
    *,
    seed: int = 0,
    min_tools: int = 2,
    max_tools: int = 4,
    min_calls: int = 1,
    max_calls: int = 3,
    max_length: int | None = 1024,
    stock_sentences: int = 0,
    stock_fixed: bool = False,
    spoken_values: bool = False,
) -> Splits:
    """Mixed ReAct/JSON splits (`min_tools`..`max_tools` tools offered and `min_calls`..`max_calls`
    calls per prompt, at most one per offered tool; held-out prompts unseen in training).

    `stock_sentences` > 0 lengthens every ReAct thought by that many input-independent sentences
    (the same ones in every thought when `stock_fixed`). `spoken_values` states dates, times and
    small numbers in words in the requests, so the calls must rewrite them (`spoken_value`).
    """
    train, test = make_split_samples(
        n_train,
        n_test,
        family="mixed",
        seed=seed,
        min_tools=min_tools,
        max_tools=max_tools,
        min_calls=min_calls,
        max_calls=max_calls,
        stock_sentences=stock_sentences,
        stock_fixed=stock_fixed,
        spoken_values=spoken_values,
    )
    return Splits(
        train, test, tokenized(train, tokenizer, max_length), tokenized(test, tokenizer, max_length)
    )


def training_columns(dataset: Dataset, with_classes: bool) -> Dataset:
    """Only what the trainer needs: input_ids, labels (and token_class for RFT)."""
    keep = ["input_ids", "labels"] + (["token_class"] if with_classes else [])
    return dataset.select_columns(keep)
