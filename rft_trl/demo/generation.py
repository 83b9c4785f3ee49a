"""Greedy generation of the first assistant turn for held-out prompts, scored with the corpus evaluator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rft_trl.shad.score import model_device
from rft_trl.synthetic import EvalResult, Sample, evaluate, evaluate_response


@torch.no_grad()
def generate_responses(
    model,
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[Sample],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    desc: str = "Generating",
    progress: bool = True,
) -> list[str]:
    """Greedy completions (stopping at the end-of-turn token) of each sample's prompt, in order."""
    model.eval()
    device = model_device(model)
    prompts = [
        tokenizer.apply_chat_template(s.prompt_messages, tokenize=False, add_generation_prompt=True)
        for s in samples
    ]
    # Batches of similar length waste less compute on padding.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    responses: dict[int, str] = {}
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in index],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = output[:, batch["input_ids"].shape[1] :]
            for i, ids in zip(index, new, strict=True):
                responses[i] = tokenizer.decode(ids, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = previous_side
    return [responses[i] for i in range(len(samples))]


def score(samples: Sequence[Sample], responses: Sequence[str]) -> dict[str, float]:
    """Exact match and format validity overall and per family (the corpus evaluator)."""
    return evaluate(samples, responses)


def examples(
    samples: Sequence[Sample], responses: Sequence[str], n: int
) -> list[dict[str, object]]:
    """The first `n` held-out samples with their reference, the response and its score (for the report)."""
    out = []
    for sample, text in list(zip(samples, responses, strict=True))[:n]:
        result = evaluate_response(sample, text)
        out.append(
            {
                "family": sample.family,
                "request": next(m["content"] for m in sample.messages if m["role"] == "user"),
                "reference": sample.first_response,
                "response": text,
                "exact_match": result.exact_match,
                "format_valid": result.format_valid,
            }
        )
    return out


def _misses(
    samples: Sequence[Sample], responses: Sequence[str]
) -> Iterator[tuple[Sample, str, EvalResult]]:
    """(sample, response, result) of every response that is not an exact match, in order."""
    for sample, text in zip(samples, responses, strict=True):
        result = evaluate_response(sample, text)
        if not result.exact_match:
            yield sample, text, result


def _miss_kind(result: EvalResult) -> str:
    return "calls" if result.format_valid else "format"


def failures(
    samples: Sequence[Sample], responses: Sequence[str], per_kind: int
) -> list[dict[str, object]]:
    """The first `per_kind` misses of each family and kind ("format": does not parse; "calls":
    parses but calls the wrong tool or arguments), with the reference, so errors can be read later."""
    out: list[dict[str, object]] = []
    counts: dict[tuple[str, str], int] = {}
    for sample, text, result in _misses(samples, responses):
        key = (sample.family, _miss_kind(result))
        counts[key] = counts.get(key, 0) + 1
        if counts[key] <= per_kind:
            out.append(
                {
                    "family": key[0],
                    "kind": key[1],
                    "id": sample.sample_id,
                    "reference": sample.first_response,
                    "response": text,
                    "error": result.error,
                }
            )
    return out


def first_divergence(sample: Sample, text: str) -> str:
    """Ground-truth category of the first reference character a response gets wrong: where a miss
    begins, in boilerplate or in reasoning. A ReAct thought's wording is free, so ReAct responses
    are compared from the line after it ("thought" when the response never ends its thought line);
    "end" when it holds the whole reference (and runs on past it)."""
    reference, start = sample.first_response, 0
    if sample.family == "react":
        start = reference.index("\n") + 1
        cut = text.find("\n")
        if cut < 0:
            return "thought"
        text = text[cut + 1 :]
    rest = reference[start:]
    diverged = (i for i, (a, b) in enumerate(zip(rest, text, strict=False)) if a != b)
    at = next(diverged, min(len(rest), len(text)))
    if at == len(rest):
        return "end"
    return next(s.category for s in sample.assistant_spans[0] if s.start <= start + at < s.end)


def divergence_counts(
    samples: Sequence[Sample], responses: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Misses counted by where they begin (`first_divergence`), per "family/kind" as in `failures`."""
    counts: dict[str, dict[str, int]] = {}
    for sample, text, result in _misses(samples, responses):
        by_category = counts.setdefault(f"{sample.family}/{_miss_kind(result)}", {})
        where = first_divergence(sample, text)
        by_category[where] = by_category.get(where, 0) + 1
    return counts
