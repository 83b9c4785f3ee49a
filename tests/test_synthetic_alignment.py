"""Per-token ground truth lines up with the tokens, for TRL's tokenization of both forms, truncated or not."""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rft_trl.synthetic import (
    CATEGORY_ID,
    IGNORE_INDEX,
    REASONING_CATEGORIES,
    Sample,
    add_ground_truth_columns,
    generate_samples,
    ground_truth_token_class,
    to_dataset,
    tokenize_example,
)
from rft_trl.synthetic.alignment import conversation_of


def _reference(tokenizer, example):
    """Independent view: token char offsets from the byte-level token strings, reasoning chars from the spans."""
    messages, spans = conversation_of(example)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    # a byte-level token string has one character per byte, and the corpus is ASCII
    lengths = [len(t) for t in tokenizer.convert_ids_to_tokens(ids)]
    offsets, pos = [], 0
    for n in lengths:
        offsets.append((pos, pos + n))
        pos += n
    assert pos == len(rendered)
    reasoning, span_texts, span_starts, char_category = set(), [], [], {}
    cursor, k = 0, 0
    for message in messages:
        at = rendered.index(message["content"], cursor)
        cursor = at + len(message["content"])
        if message["role"] != "assistant":
            continue
        for span in spans[k]:
            for c in range(at + span.start, at + span.end):
                char_category[c] = CATEGORY_ID[span.category]
            if span.category in REASONING_CATEGORIES:
                reasoning.update(range(at + span.start, at + span.end))
                span_texts.append((at + span.start, at + span.end))
                span_starts.append(at + span.start)
        k += 1
    return rendered, ids, offsets, reasoning, span_texts, span_starts, char_category


def check_alignment(tokenizer, example, input_ids, labels, start):
    """Assert the ground truth of input_ids == full_ids[start:start+len] against the reference."""
    rendered, full_ids, offsets, reasoning, spans, span_starts, char_category = _reference(
        tokenizer, example
    )
    assert list(input_ids) == full_ids[start : start + len(input_ids)]
    gt = ground_truth_token_class(tokenizer, example, input_ids, labels)
    assert len(gt.token_class) == len(gt.category) == len(gt.span_first) == len(input_ids)
    window = offsets[start : start + len(input_ids)]
    for (a, b), label, cls, cat, first in zip(
        window, labels, gt.token_class, gt.category, gt.span_first, strict=True
    ):
        if label == IGNORE_INDEX:
            assert cls == cat == first == IGNORE_INDEX
            continue
        chars = range(a, b)
        is_reasoning = any(c in reasoning for c in chars)
        assert cls == int(is_reasoning), rendered[a:b]
        assert first == int(any(c in span_starts for c in chars)), rendered[a:b]
        cats = {char_category.get(c, CATEGORY_ID["template"]) for c in chars}
        assert cat in cats
        if len(cats) == 1:
            assert cat == cats.pop()
    # decoding each maximal run of reasoning-labelled tokens reproduces whole reasoning spans
    runs, current = [], []
    for (a, b), cls in zip(window, gt.token_class, strict=True):
        if cls == 1:
            current.append((a, b))
        elif current:
            runs.append((current[0][0], current[-1][1]))
            current = []
    if current:
        runs.append((current[0][0], current[-1][1]))
    in_loss = {
        c
        for (a, b), lab in zip(window, labels, strict=True)
        if lab != IGNORE_INDEX
        for c in range(a, b)
    }
    for s, e in spans:
        if all(c in in_loss for c in range(s, e)):
            assert any(a <= s and e <= b for a, b in runs), rendered[s:e]
    decoded_runs = [
        tokenizer.decode(input_ids[i : i + 1]) for i, c in enumerate(gt.token_class) if c == 1
    ]
    assert all(decoded_runs)  # every reasoning token decodes to text
    return gt


def _truncate(ids, labels, mode, keep):
    if mode == "none" or keep >= len(ids):
        return ids, labels, 0
    if mode == "keep_start":
        return ids[:keep], labels[:keep], 0
    return ids[-keep:], labels[-keep:], len(ids) - keep


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    family=st.sampled_from(["react", "json"]),
    form=st.sampled_from(["messages", "prompt_completion"]),
    mode=st.sampled_from(["none", "keep_start", "keep_end"]),
    fraction=st.floats(0.02, 1.0),
    as_row=st.booleans(),
)
def test_ground_truth_matches_characters_for_every_token(
    tiny_tokenizer, seed, family, form, mode, fraction, as_row
):
    sample = generate_samples(1, family, seed=seed)[0]
    example = to_dataset([sample], form)[0] if as_row else sample
    enc = tokenize_example(tiny_tokenizer, example, form=form)
    ids, labels = enc["input_ids"], enc["labels"]
    keep = max(1, int(len(ids) * fraction))
    ids, labels, start = _truncate(ids, labels, mode, keep)
    check_alignment(tiny_tokenizer, example, ids, labels, start)


def test_end_of_turn_tokens_are_boilerplate_template(tiny_tokenizer, synthetic_samples):
    end_id = tiny_tokenizer.convert_tokens_to_ids("<|end|>")
    for sample in synthetic_samples[:8]:
        enc = tokenize_example(tiny_tokenizer, sample)
        gt = ground_truth_token_class(tiny_tokenizer, sample, enc["input_ids"], enc["labels"])
        ends = [
            i
            for i, (t, lab) in enumerate(zip(enc["input_ids"], enc["labels"], strict=True))
            if t == end_id and lab != IGNORE_INDEX
        ]
        # one trained end-of-turn token per assistant turn
        assert len(ends) == len(sample.assistant_spans)
        assert all(
            gt.token_class[i] == 0 and gt.category[i] == CATEGORY_ID["template"] for i in ends
        )
        assert (
            0 < sum(c == 1 for c in gt.token_class) < sum(c != IGNORE_INDEX for c in gt.token_class)
        )


def test_rejects_mismatched_inputs(tiny_tokenizer, synthetic_samples):
    a, b = synthetic_samples[0], synthetic_samples[1]
    enc = tokenize_example(tiny_tokenizer, a)
    with pytest.raises(ValueError, match="labels has"):
        ground_truth_token_class(tiny_tokenizer, a, enc["input_ids"], enc["labels"][:-1])
    with pytest.raises(ValueError, match="does not decode to a part of the rendered conversation"):
        ground_truth_token_class(tiny_tokenizer, b, enc["input_ids"], enc["labels"])
    with pytest.raises(ValueError, match="'messages' or 'prompt'"):
        ground_truth_token_class(tiny_tokenizer, {"text": "x"}, enc["input_ids"])


@pytest.mark.parametrize("form", ["messages", "prompt_completion"])
@pytest.mark.parametrize("truncation_mode", ["keep_start", "keep_end"])
def test_alignment_on_sft_trainer_prepared_dataset(
    tiny_tokenizer, tiny_model, form, truncation_mode
):
    """What SFTTrainer actually tokenizes: labels from assistant_masks / completion_mask, then truncation."""
    from trl import SFTConfig, SFTTrainer

    samples = generate_samples(12, "mixed", seed=21)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        assistant_only_loss=form == "messages",
        # long enough to keep some rows whole, short enough to cut others inside a response
        max_length=640 if truncation_mode == "keep_start" else 200,
        truncation_mode=truncation_mode,
        report_to=[],
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=tiny_model,
        args=args,
        train_dataset=to_dataset(samples, form),
        processing_class=tiny_tokenizer,
    )
    prepared = trainer.train_dataset
    assert {"input_ids", "labels", "sample_id", "gt_spans"} <= set(prepared.column_names)
    labelled = add_ground_truth_columns(prepared, tiny_tokenizer)
    by_id = {s.sample_id: s for s in samples}
    assert labelled.num_rows >= 4
    assert any(
        len(r) < len(tokenize_example(tiny_tokenizer, by_id[i], form=form)["input_ids"])
        for r, i in zip(labelled["input_ids"], labelled["sample_id"], strict=True)
    )
    for row in labelled:
        sample = by_id[row["sample_id"]]
        full = tokenize_example(tiny_tokenizer, sample, form=form)
        start = (
            0 if truncation_mode == "keep_start" else len(full["input_ids"]) - len(row["input_ids"])
        )
        # TRL's labels (from its masks, then truncation) equal ours
        assert row["labels"] == full["labels"][start : start + len(row["labels"])]
        gt = check_alignment(tiny_tokenizer, sample, row["input_ids"], row["labels"], start)
        assert row["gt_class"] == gt.token_class
        assert row["gt_category"] == gt.category
        assert row["gt_span_first"] == gt.span_first
    # the same columns when rows carry no conversation: look samples up by sample_id
    bare = prepared.select_columns(["sample_id", "input_ids", "labels"])
    assert (
        add_ground_truth_columns(bare, tiny_tokenizer, samples)["gt_class"] == labelled["gt_class"]
    )
    assert labelled.features["gt_class"].feature.dtype == "int8"


def test_masks_instead_of_labels(tiny_tokenizer, synthetic_samples):
    sample: Sample = synthetic_samples[2]
    out = tiny_tokenizer.apply_chat_template(
        sample.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    labels = [
        t if m else IGNORE_INDEX
        for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True)
    ]
    by_mask = ground_truth_token_class(
        tiny_tokenizer, sample, out["input_ids"], loss_mask=out["assistant_masks"]
    )
    by_labels = ground_truth_token_class(tiny_tokenizer, sample, out["input_ids"], labels)
    assert by_mask == by_labels
