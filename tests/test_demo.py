"""`rft-trl demo`: the quick path end to end (well-formed metrics.json and report.html), and bad --out."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

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
    for run in ("sft", "rft"):
        curve = metrics["curves"][run]
        assert curve[0]["step"] == 0 and curve[-1]["step"] == metrics["settings"]["budget"]["steps"]
        assert all(p["boilerplate_loss"] > 0 and p["reasoning_loss"] > 0 for p in curve)
    assert metrics["rft_train_log"] and "reasoning_weight" in metrics["rft_train_log"][0]


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
