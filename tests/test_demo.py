"""`rft-trl demo`: the quick path end to end (well-formed metrics.json and report.html), and bad --out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rft_trl.cli import main
from rft_trl.demo.report import token_line

REQUIRED_FIELDS = (
    "shad_token_accuracy",
    "shad_reasoning_precision",
    "shad_reasoning_recall",
    "shad_reasoning_f1",
    "shad_auroc",
    "boilerplate_fraction",
    "sft_exact_match",
    "rft_exact_match",
    "sft_format_valid",
    "rft_format_valid",
)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One `rft-trl demo --quick` run shared by the tests below (about a minute on one core)."""
    import torch

    root = tmp_path_factory.mktemp("demo")
    out = root / "out"
    threads = torch.get_num_threads()
    try:
        code = main(
            [
                "demo",
                "--quick",
                "--out",
                str(out),
                "--cache-dir",
                str(root / "cache"),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    return code, out


def test_quick_demo_writes_well_formed_metrics(quick_demo, capsys):
    code, out = quick_demo
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for name in REQUIRED_FIELDS:
        assert name in metrics, name
        value = metrics[name]
        if value is None:  # AUROC is undefined when one class is absent (possible at this size)
            assert name == "shad_auroc"
            continue
        assert isinstance(value, float | int) and 0.0 <= value <= 1.0, (name, value)
    for phase in ("base", "corpus", "shad", "sft", "rft", "eval_sft", "eval_rft", "total"):
        assert metrics["seconds"][phase] >= 0
    assert {"rft_trl", "torch", "transformers", "trl", "peft"} <= set(metrics["versions"])
    assert metrics["seed"] == 0 and metrics["settings"]["quick"] is True
    shape = [metrics["settings"][k] for k in ("min_tools", "max_tools", "min_calls", "max_calls")]
    assert shape == [2, 2, 1, 3]  # the corpus shape: 2 tools offered, 1-2 calls
    for run in ("sft", "rft"):
        curve = metrics["curves"][run]
        assert curve[0]["step"] == 0 and curve[-1]["step"] == metrics["settings"]["budget"]["steps"]
        assert all(p["boilerplate_loss"] > 0 and p["reasoning_loss"] > 0 for p in curve)
    assert metrics["rft_train_log"] and "reasoning_weight" in metrics["rft_train_log"][0]
    # the base's own size, as recorded when it was built (not counting the LoRA layers)
    recorded = json.loads((Path(metrics["base"]["path"]) / "demo_base.json").read_text())
    assert metrics["base"]["parameters"] == recorded["parameters"]


def test_quick_demo_writes_a_standalone_report(quick_demo):
    _, out = quick_demo
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for section in (
        "Results on the held-out set",
        "SHAD labels against ground truth",
        "Loss on boilerplate vs reasoning",
    ):
        assert section in page
    assert page.count("<svg") >= 3  # LD histogram, loss curves, pretraining loss
    assert "<script" not in page and "<link" not in page and "src=" not in page  # nothing external
    assert 'class="tok' in page
    assert "What this run shows." in page and "What it does not" in page
    assert "ground-truth category (its role)" in page and "(reasoning)" in page


def test_the_run_summary_reads_the_difference_against_its_standard_error():
    from rft_trl.demo.report import _run_summary

    metrics = {
        "settings": {"n_test": 300},
        "sft_format_valid": 0.95,
        "rft_format_valid": 0.913,
        "shad_token_accuracy": 0.664,
    }
    level = _run_summary({**metrics, "sft_exact_match": 0.013, "rft_exact_match": 0.013})
    assert "level on exact match" in level and "-3.7 points" in level and "66.4%" in level
    above = _run_summary({**metrics, "sft_exact_match": 0.10, "rft_exact_match": 0.30})
    assert "RFT is above SFT on exact match by 20.0 points" in above


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_device_cuda_without_a_gpu_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["demo", "--quick", "--device", "cuda", "--out", str(out)]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no CUDA GPU" in err and "--device cpu" in err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_device_cuda_with_several_gpus_visible_asks_for_one(monkeypatch):
    # No machine here has two GPUs: what torch reports is set, the check itself runs for real.
    from rft_trl.demo.pipeline import DemoError, check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DemoError, match=r"sees 2 GPUs.*CUDA_VISIBLE_DEVICES=0"):
        check_device("cuda")
    assert check_device("cpu") == "cpu"


def test_unknown_device_is_refused_by_the_library_too(tmp_path):
    from rft_trl.demo.pipeline import DemoError, run_demo, settings_for

    with pytest.raises(DemoError, match=r"--device 'tpu' is not supported.*cpu, cuda"):
        run_demo(settings_for(tmp_path / "out", quick=True, device="tpu"))
    assert not (tmp_path / "out").exists()


def test_token_text_is_escaped():
    html = token_line(["<script>", "&", '"x"'], [1, 0, 0], [1, 1, 0], ["<tip>", "", ""])
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html
    assert "&lt;tip&gt;" in html and "miss" in html


def test_out_pointing_at_a_file_is_refused_before_any_work(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    assert (
        main(["demo", "--quick", "--out", str(target), "--cache-dir", str(tmp_path / "cache")]) == 2
    )
    err = capsys.readouterr().err
    assert "is a file" in err and "Fix" in err
    assert target.read_text() == "keep me"
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "-1"], "--seed -1 must be in [0, 2**32)"),
        (["--threads", "0"], "--threads 0 must be >= 1"),
        (["--cache-dir", "FILE"], "is a file"),
    ],
)
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, flags, message):
    (tmp_path / "FILE").write_text("")
    flags = [str(tmp_path / f) if f == "FILE" else f for f in flags]
    cache = ["--cache-dir", str(tmp_path / "cache")] if "--cache-dir" not in flags else []
    out = tmp_path / "out"
    assert main(["demo", "--quick", "--out", str(out), *cache, *flags]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_missing_matplotlib_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a),
    )
    out = tmp_path / "out"
    assert main(["demo", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "c")]) == 2
    assert 'pip install "rft-trl[demo]"' in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "c").exists()


def test_unwritable_out_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    # A folder below a regular file can never be created, even by root.
    assert (
        main(
            [
                "demo",
                "--quick",
                "--out",
                str(blocker / "sub"),
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "not a writable folder" in err
    assert not (tmp_path / "cache").exists()


def test_demo_data_follows_the_settings_corpus_shape(tiny_tokenizer, tmp_path):
    from rft_trl.demo.pipeline import demo_data, settings_for
    from rft_trl.synthetic import REASONING

    settings = settings_for(tmp_path, seed=4, quick=True, n_train=12, n_test=6)
    plain = demo_data(tiny_tokenizer, settings)
    verbose = demo_data(tiny_tokenizer, replace(settings, stock_sentences=2))
    assert [s.calls for s in plain.train_samples] == [s.calls for s in verbose.train_samples]
    assert [s.sample_id for s in plain.test_samples] == [s.sample_id for s in verbose.test_samples]
    for sample, row_a, row_b in zip(plain.train_samples, plain.train, verbose.train, strict=True):
        longer = len(row_b["input_ids"]) > len(row_a["input_ids"])
        assert longer == (sample.family == "react")  # only ReAct thoughts carry the extra sentences
        reasoning = [sum(c == REASONING for c in row["gt_class"]) for row in (row_a, row_b)]
        assert reasoning[0] == reasoning[1]  # the added tokens are all boilerplate


def test_failures_keeps_the_first_misses_of_each_family_and_kind():
    from rft_trl.demo.generation import divergence_counts, failures
    from rft_trl.synthetic import generate_samples

    samples = generate_samples(60, "mixed", seed=2)
    wrong_call = {"react": "Thought: x\nAction: nope\nAction Input: {}", "json": "[]"}
    responses = []
    for i, sample in enumerate(samples):
        kind = ("right", "format", "calls")[i % 3]
        if kind == "right":
            responses.append(sample.first_response)
        else:
            responses.append("no format at all" if kind == "format" else wrong_call[sample.family])
    kept = failures(samples, responses, per_kind=2)
    keys = [(f["family"], f["kind"]) for f in kept]
    assert sorted(keys) == sorted(
        (fam, k) for fam in ("json", "react") for k in ("calls", "format") for _ in range(2)
    )
    by_id = {s.sample_id: (i, s) for i, s in enumerate(samples)}
    for miss in kept:
        i, sample = by_id[miss["id"]]
        assert miss["kind"] == ("right", "format", "calls")[i % 3]
        assert miss["reference"] == sample.first_response and miss["response"] == responses[i]
        assert (miss["error"] is None) == (miss["kind"] == "calls")
    # in sample order: the earliest misses of each family and kind are the ones kept
    expected = {}
    for i, sample in enumerate(samples):
        key = (sample.family, ("right", "format", "calls")[i % 3])
        if key[1] != "right" and len(expected.setdefault(key, [])) < 2:
            expected[key].append(sample.sample_id)
    assert [f["id"] for f in kept] == sorted(
        (i for ids in expected.values() for i in ids), key=lambda i: by_id[i][0]
    )
    assert failures(samples, [s.first_response for s in samples], per_kind=5) == []
    # every miss is counted once, by where it leaves the reference: JSON at a format character,
    # ReAct's unformatted text never ends its thought line and its wrong call at the tool name
    counts = divergence_counts(samples, responses)
    n_misses = {
        f"{s.family}/{('right', 'format', 'calls')[i % 3]}": 0 for i, s in enumerate(samples)
    }
    for i, s in enumerate(samples):
        n_misses[f"{s.family}/{('right', 'format', 'calls')[i % 3]}"] += 1
    assert counts["json/format"] == {"format": n_misses["json/format"]}
    assert counts["json/calls"] == {"format": n_misses["json/calls"]}
    assert counts["react/format"] == {"thought": n_misses["react/format"]}
    assert counts["react/calls"] == {"tool_name": n_misses["react/calls"]}
    assert not any(key.endswith("/right") for key in counts)


def test_first_divergence_names_the_category_where_a_response_leaves_the_reference():
    from rft_trl.demo.generation import first_divergence
    from rft_trl.synthetic import generate_samples

    sample = next(s for s in generate_samples(20, "json", seed=4))
    reference, call = sample.first_response, sample.calls[0]
    assert first_divergence(sample, "") == "format"  # an empty response misses the opening "["
    assert first_divergence(sample, reference.replace('"arguments"', '"arstory"', 1)) == "format"
    assert first_divergence(sample, reference.replace(call.name, "zzz", 1)) == "tool_name"
    value = next(span for span in sample.assistant_spans[0] if span.category == "argument_value")
    changed = reference[: value.start] + "~" + reference[value.start + 1 :]
    assert first_divergence(sample, changed) == "argument_value"
    assert first_divergence(sample, reference[:-1]) == "format"  # stops before the closing "]"
    assert first_divergence(sample, reference + " more") == "end"  # runs on past the reference
    react = next(s for s in generate_samples(20, "react", seed=4) if s.calls)
    thought, action = react.first_response.split("\n", 1)
    assert first_divergence(react, "Thought: other words\n" + action) == "end"  # wording is free
    assert first_divergence(react, thought + " and on and on") == "thought"
    assert first_divergence(react, thought + "\nAction: zzz") == "tool_name"
    assert first_divergence(react, thought + "\nAct: x") == "format"


def test_group_losses_per_category_average_back_to_the_two_groups(
    tiny_model, tiny_tokenizer, tmp_path
):
    from rft_trl.demo.metrics import group_losses, pad_batches
    from rft_trl.demo.pipeline import demo_data, settings_for
    from rft_trl.synthetic import CATEGORY_ID, REASONING_CATEGORIES

    splits = demo_data(tiny_tokenizer, settings_for(tmp_path, seed=1, quick=True, n_test=6))
    columns = ("input_ids", "labels", "gt_class", "gt_category")
    rows = [
        dict(zip(columns, r, strict=True))
        for r in zip(*(splits.test[c] for c in columns), strict=True)
    ]
    with_categories = group_losses(tiny_model, pad_batches(rows, tiny_tokenizer.pad_token_id, 4))
    plain_rows = [{k: v for k, v in r.items() if k != "gt_category"} for r in rows]
    plain = group_losses(tiny_model, pad_batches(plain_rows, tiny_tokenizer.pad_token_id, 4))
    assert "category_loss" not in plain  # only asked for when the rows carry categories
    assert {k: with_categories[k] for k in plain} == plain
    # token-count-weighted category means give back the boilerplate and reasoning means
    counts = {name: 0 for name in CATEGORY_ID}
    for row in rows:
        for label, category in zip(row["labels"][1:], row["gt_category"][1:], strict=True):
            if label != -100:
                counts[next(n for n, i in CATEGORY_ID.items() if i == category)] += 1
    losses = with_categories["category_loss"]
    assert set(losses) == {n for n, c in counts.items() if c}
    for group, names in (
        ("reasoning_loss", [n for n in losses if n in REASONING_CATEGORIES]),
        ("boilerplate_loss", [n for n in losses if n not in REASONING_CATEGORIES]),
    ):
        mean = sum(losses[n] * counts[n] for n in names) / sum(counts[n] for n in names)
        assert mean == pytest.approx(with_categories[group], rel=1e-5)
