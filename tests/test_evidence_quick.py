"""`benchmarks/evidence.py run --quick`, `thresholds`, `errors`, `shuffles`, `weights` and `summary` run end to end and resume (no benchmark result is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "evidence.py"


def _evidence(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_quick_run_writes_one_row_per_variant_then_resumes_and_summarises(tmp_path):
    results = tmp_path / "evidence.jsonl"
    run_args = [
        "run",
        "--quick",
        "--seeds",
        "0",
        "--variants",
        "sft",
        "rft",
        "rft_gt",
        "rft_margin",
        "sft_per_sample",
        "--n-test",
        "8",
        "--loss-samples",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--results",
        str(results),
    ]
    first = _evidence(*run_args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    runs = [r for r in rows if r["kind"] == "run"]
    assert [r["variant"] for r in runs] == ["sft", "rft", "rft_gt", "rft_margin", "sft_per_sample"]
    assert [r["kind"] for r in rows].count("seed") == 1
    seed_row = next(r for r in rows if r["kind"] == "seed")
    assert seed_row["settings"]["corpus"] == {"tools": [2, 2], "calls": [1, 3]}  # resume checks it
    for row in runs:
        assert 0.0 <= row["exact_match"] <= 1.0 and 0.0 <= row["format_valid"] <= 1.0
        assert row["heldout_reasoning_loss"] > 0 and row["heldout_boilerplate_loss"] > 0
        assert row["n_test"] == 8
        # every held-out response has format characters and names a tool
        assert {"format", "tool_name"} <= set(row["heldout_category_loss"])
        # every miss is counted once by where it begins
        n_misses = sum(sum(c.values()) for c in row["miss_origin"].values())
        assert n_misses == round(8 * (1 - row["exact_match"]))
        # the misses kept for reading later are misses, at most FAILURES_KEPT per family and kind
        kinds = [(f["family"], f["kind"]) for f in row["failures"]]
        assert all(kinds.count(k) <= 5 for k in kinds)
        assert len(row["failures"]) <= round(8 * (1 - row["exact_match"]))
        assert all((f["kind"] == "format") == (f["error"] is not None) for f in row["failures"])
    # RFT logs its reasoning weight (a softmax weight, in [0, 1]); SFT has none
    assert all(
        0.0 <= w <= 1.0 for r in runs if r["variant"] != "sft" for _, w in r["reasoning_weight"]
    )
    assert all(r["reasoning_weight"] for r in runs if r["variant"] != "sft")
    assert [r["reasoning_weight"] for r in runs if r["variant"] == "sft"] == [[]]
    # ground-truth labels agree with ground truth; SFT has no labels
    by_variant = {r["variant"]: r for r in runs}
    assert by_variant["rft_gt"]["label_quality"]["accuracy"] == 1.0
    assert by_variant["sft"]["label_quality"] is None
    assert by_variant["sft_per_sample"]["label_quality"]["boilerplate_fraction"] == 0.0
    # a higher threshold labels at least as many tokens boilerplate
    margin, plain = by_variant["rft_margin"]["label_quality"], by_variant["rft"]["label_quality"]
    assert margin["boilerplate_fraction"] >= plain["boilerplate_fraction"]

    # the threshold sweep re-labels from SHAD's cached losses and agrees with the runs' labels
    seed_args = ["--quick", "--seeds", "0", "--n-test", "8", "--cache-dir", str(tmp_path / "cache")]
    sweep = _evidence("thresholds", *seed_args, "--thresholds", "0", "0.005", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-4000:]
    assert "| threshold | accuracy | JSON | ReAct |" in sweep.stdout
    rows_by_cut = [
        line.split(" | ") for line in sweep.stdout.splitlines() if line.startswith("| 0")
    ]
    cells = {cells[0].removeprefix("| "): cells[1] for cells in rows_by_cut}
    assert cells["0"].startswith(f"{100 * plain['accuracy']:.1f} +- ")
    assert cells["0.005"].startswith(f"{100 * margin['accuracy']:.1f} +- ")
    # the per-category table covers every response token once, and its shares above 0 pool to
    # the labels' reasoning fraction
    auroc = sweep.stdout.split("AUROC of LD ")[1].split(";")[0]
    assert 0.0 <= float(auroc) <= 1.0
    table = sweep.stdout.split("| category | truth | family |")[1].splitlines()[2:]
    category_rows = [line.strip("| ").split(" | ") for line in table if line.startswith("| ")]
    tokens = np.array([int(cells[3]) for cells in category_rows])
    above_0 = np.array([float(cells[6]) for cells in category_rows])
    assert {cells[1] for cells in category_rows} == {"reasoning", "boilerplate"}
    assert np.all((above_0 >= 0) & (above_0 <= 1))
    labelled_reasoning = float((tokens * above_0).sum() / tokens.sum())
    assert labelled_reasoning == pytest.approx(1 - plain["boilerplate_fraction"], abs=0.01)

    # the wrong labels per category add up to the margin labels' errors, and every listed token's
    # wrong count is at most its count in the category
    wrong = _evidence("errors", *seed_args, "--threshold", "0.005", cwd=tmp_path)
    assert wrong.returncode == 0, wrong.stderr[-4000:]
    header = wrong.stdout.split("SHAD's wrong labels at LD > 0.005, seeds [0]: ")[1].splitlines()[0]
    total = int(header.split(" of ")[1].split()[0])
    rows_wrong = [
        line.strip("| ").split(" | ")
        for line in wrong.stdout.split("| category | truth |")[1].splitlines()[2:]
        if line.startswith("| ")
    ]
    counted = sum(int(cells[3].split(" / ")[0]) for cells in rows_wrong)
    assert counted == round(total * (1 - margin["accuracy"]))
    for cells in rows_wrong:
        n_wrong = int(cells[3].split(" / ")[0])
        listed = [item.rsplit(" ", 1)[1].split("/") for item in cells[7].split(", ")]
        assert all(0 < int(a) <= int(b) for a, b in listed)
        assert sum(int(a) for a, _ in listed) <= n_wrong

    # the first shuffle-tune is the seed's own SHAD run: its row repeats the labels' accuracy;
    # a second tune with another seed moves LD but not so far that it is uncorrelated
    tunes = _evidence("shuffles", *seed_args, "--shuffles", "2", cwd=tmp_path)
    assert tunes.returncode == 0, tunes.stderr[-4000:]
    by_k = {
        cells[0]: cells[1:]
        for cells in (
            line.strip("| ").split(" | ")
            for line in tunes.stdout.split("| shuffle-tunes averaged")[1].splitlines()[2:]
            if line.startswith("| ")
        )
    }
    assert list(by_k) == ["1", "2"]
    assert by_k["1"][0].startswith(f"{100 * plain['accuracy']:.1f} +- ")
    assert by_k["1"][1].startswith(f"{100 * margin['accuracy']:.1f} +- ")
    assert float(by_k["1"][2].split(" +- ")[0]) == pytest.approx(float(auroc), abs=1e-3)
    correlation = tunes.stdout.split("and the others ")[1].split(";")[0].split("-")
    assert correlation[0] == correlation[1] and 0.0 < float(correlation[0]) < 1.0
    assert "shuffle-tune 1000 done" in tunes.stderr

    # loss-weight shares: each variant's row sums to 100 per family; SFT's are the token shares
    weighed = _evidence("weights", *seed_args, cwd=tmp_path)
    assert weighed.returncode == 0, weighed.stderr[-4000:]
    shares = {}
    for block in weighed.stdout.split("\n\n")[1:]:
        if block.startswith("| variant |"):
            for line in block.splitlines()[2:]:
                cells = line.strip("| ").split(" | ")
                shares.setdefault(cells[0], []).append([float(c) for c in cells[1:]])
    assert set(shares) >= {"sft", "rft", "rft_gt", "rft_gt_format", "alpha_ft"}
    assert all(len(v) == 3 for v in shares.values())  # all, json, react
    assert all(abs(sum(row) - 100.0) < 0.5 for v in shares.values() for row in v)
    # every JSON sample has both ground-truth groups, so at w_r = 0.5 the reasoning categories
    # (tool name, argument value, purpose) hold half the weight; with format counted as reasoning
    # the end-of-turn token is the JSON samples' whole boilerplate group: the other half
    assert abs(sum(shares["rft_gt"][1][:3]) - 50.0) < 0.5
    assert abs(shares["rft_gt_format"][1][5] - 50.0) < 0.5

    again = _evidence(*run_args, cwd=tmp_path)  # every chunk is done: nothing is rerun
    assert again.returncode == 0, again.stderr[-4000:]
    assert results.read_text().count("\n") == len(rows)
    # resuming with another budget would mix setups under one seed: refused, nothing written
    other = _evidence(*run_args, "--steps", "13", cwd=tmp_path)
    assert other.returncode == 2
    assert "already holds seed 0 from another setup (steps 12 there, 13 now)" in other.stderr
    assert "Fix: pass a new --results file" in other.stderr
    assert results.read_text().count("\n") == len(rows)

    summary = _evidence("summary", "--results", str(results), cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr[-4000:]
    table = summary.stdout
    assert "| variant | exact match %" in table
    assert "Corpus shape per prompt: tools 2 to 2, calls 1 to 3 (seeds [0])." in table
    assert all(f"| {v} |" in table for v in ("sft", "rft", "rft_gt"))
    assert "SHAD label quality per seed" in table
    assert "| variant | json exact | json Δ exact | json format | react exact" in table
    assert "| rft_gt | " in table.split("By corpus family")[1]
    versus_rft = table.split("paired against `rft`")[1].split("Held-out loss per")[0]
    assert "| rft_gt | 1 | " in versus_rft and "| rft_margin | 1 | " in versus_rft
    assert "| sft |" not in versus_rft and "| rft | " not in versus_rft
    assert "Where the misses begin" in table and "SHAD label quality per seed" in table
    weights_table = table.split("reasoning weight w_r as logged")[1].split("SHAD label quality")[0]
    assert "| rft | 1 | " in weights_table and "| sft |" not in weights_table


def test_summary_without_results_says_what_to_run(tmp_path):
    proc = _evidence("summary", "--results", str(tmp_path / "missing.jsonl"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "no results" in proc.stderr and "evidence.py run" in proc.stderr


def _row(seed: int, variant: str, exact: float) -> dict:
    return {
        "kind": "run",
        "seed": seed,
        "variant": variant,
        "exact_match": exact,
        "format_valid": 0.9,
        "evaluation": {},
        "heldout_boilerplate_loss": 0.2,
        "heldout_reasoning_loss": 0.5,
        "label_quality": None,
        "n_test": 10,
    }


def _summarise(tmp_path: Path, rows: list[dict]) -> subprocess.CompletedProcess:
    """`evidence.py summary` on `rows` written to a results file in `tmp_path`; it must succeed."""
    results = tmp_path / "evidence.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = _evidence("summary", "--results", str(results), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_summary_pairs_only_the_seeds_that_have_both_runs(tmp_path):
    rows = [_row(0, "sft", 0.30), _row(0, "rft", 0.32), _row(0, "rft_gt", 0.35)]
    rows += [_row(1, "sft", 0.30), _row(1, "rft_gt", 0.40)]  # seed 1 has no rft run
    proc = _summarise(tmp_path, rows)
    versus_rft = proc.stdout.split("paired against `rft`")[1]
    assert "| rft_gt | 1 | 3.00 | 1/1 |" in versus_rft
    assert "| rft_gt | 37.50 ± 3.54 | 7.50 ± 3.54 | 2/2 |" in proc.stdout  # vs SFT: both seeds


def test_summary_sets_each_variant_against_sfts_run_to_run_noise(tmp_path):
    rows = [_row(0, "sft", 0.30), _row(0, "sft_reseed", 0.32), _row(0, "rft", 0.33)]
    rows += [_row(1, "sft", 0.30), _row(1, "sft_reseed", 0.29), _row(1, "rft", 0.31)]
    rows += [_row(2, "sft", 0.30), _row(2, "rft", 0.50)]  # no second SFT run: left out here
    proc = _summarise(tmp_path, rows)
    table = proc.stdout.split("Against SFT's run-to-run noise")[1]
    assert "seeds with both SFT runs: [0, 1]). `sft_reseed` - `sft`: 0.50 ± 2.12." in table
    # vs sft 3, 1; vs sft_reseed 1, 2; vs their mean 2, 1.5: SE 0.354 / sqrt(2) = 0.25
    assert "| rft | 2 | 2.00 ± 1.41 | 1.50 ± 0.71 | 1.75 ± 0.35 | 0.25 | 7.0 | 2/2 |" in table


def test_summary_says_where_the_misses_begin_and_the_loss_per_category(tmp_path):
    rows = []
    for seed in (0, 1):
        sft = _row(seed, "sft", 0.30)
        sft["miss_origin"] = {
            "json/format": {"format": 3, "argument_value": 1},
            "json/calls": {"tool_name": 2},
            "react/format": {"thought": 4, "end": 1},
            "react/calls": {"argument_value": 5},
        }
        sft["heldout_category_loss"] = {"format": 0.2 * (1 + seed), "tool_name": 1.0 + 2 * seed}
        rows += [sft, _row(seed, "rft", 0.31)]  # rft recorded neither: no row for it
    unpaired = _row(2, "rft", 0.2)  # a seed whose SFT run did not record them stays out
    unpaired["miss_origin"] = {"json/calls": {"tool_name": 9}}
    rows.append(unpaired)
    proc = _summarise(tmp_path, rows)
    table = proc.stdout.split("Where the misses begin")[1]
    assert "pooled over seeds [0, 1]" in table
    # json: 6 misses per run, 3 of 6 at boilerplate, 3 at reasoning; react: 10 misses, 4 stuck in
    # the thought, 1 at boilerplate (runs on past the reference), 5 at reasoning
    assert "| sft | 2 | 6 | 50 % | 50 % | 10 | 40 % | 10 % | 50 % |" in table
    assert "| rft |" not in table
    losses = proc.stdout.split("Held-out loss per ground-truth category")[1]
    assert "| sft | 2 | 2.000 | - | - | - | 0.300 | - |" in losses  # CATEGORY_ORDER columns
    assert "| rft |" not in losses


def test_base_and_corpus_options_reach_the_settings_and_bad_values_are_refused(
    capsys, benchmark_script
):
    evidence = benchmark_script("evidence")
    from rft_trl.demo.base_model import BaseRecipe

    args = evidence.parse_args(
        ["thresholds", "--seeds", "3", "--base-steps", "1500", "--base-forms", "function", "keyed"]
    )
    settings = evidence.seed_settings(3, args)
    assert settings.base.call_forms == ("function", "keyed")
    assert settings.base.pretrain_steps == 1500 and settings.base.seed == 3
    assert settings.stock_sentences == 0  # the demo's corpus unless asked
    fixed = evidence.seed_settings(3, evidence.parse_args(["thresholds", "--fixed-base"]))
    assert fixed.base == BaseRecipe()  # the demo's base when no base option is given
    other = evidence.seed_settings(3, evidence.parse_args(["thresholds", "--base-seed", "2"]))
    assert other.base == replace(BaseRecipe(), seed=2) and other.seed == 3
    with pytest.raises(SystemExit):
        evidence.parse_args(["run", "--fixed-base", "--base-seed", "1"])
    assert "--fixed-base uses the seed-0 base and --base-seed 1 another" in capsys.readouterr().err
    verbose = evidence.seed_settings(1, evidence.parse_args(["run", "--stock-sentences", "4"]))
    assert verbose.stock_sentences == 4 and verbose.seed == 1 and not verbose.stock_fixed
    fixed_stock = evidence.parse_args(["run", "--stock-sentences", "2", "--stock-fixed"])
    assert evidence.seed_settings(1, fixed_stock).stock_fixed
    with pytest.raises(SystemExit):
        evidence.parse_args(["thresholds", "--base-forms", "yaml"])
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evidence.parse_args(["run", "--stock-sentences", "20"])
    assert "--stock-sentences 20: pass a number in [0, 16]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evidence.parse_args(["run", "--stock-fixed"])
    assert "--stock-fixed has no sentences to fix" in capsys.readouterr().err
    bigger = evidence.seed_settings(
        0,
        evidence.parse_args(
            ["run", "--base-hidden", "256", "--base-layers", "6", "--base-lr", "3e-3"]
        ),
    )
    assert bigger.base.learning_rate == 3e-3
    assert (bigger.base.hidden_size, bigger.base.num_attention_heads) == (256, 8)
    assert (bigger.base.intermediate_size, bigger.base.num_hidden_layers) == (768, 6)
    assert bigger.base.fingerprint() != BaseRecipe().fingerprint()  # its own cached base
    assert bigger.device == "cpu"  # the documented figures' device unless asked
    assert bigger.shad_learning_rate == 1e-3  # the demo's shuffle-tune rate unless asked
    tuned = evidence.seed_settings(0, evidence.parse_args(["run", "--shad-lr", "3e-3"]))
    assert tuned.shad_learning_rate == 3e-3 and tuned.base == BaseRecipe()
    batched = evidence.seed_settings(0, evidence.parse_args(["run", "--base-batch", "32"]))
    assert batched.base.batch_size == 32
    assert batched.base.fingerprint() != BaseRecipe().fingerprint()
    for flag, value, message in [
        ("--base-batch", "0", "--base-batch 0: pass a number >= 1"),
        ("--base-hidden", "100", "--base-hidden 100: pass a multiple of 32"),
        ("--base-hidden", "0", "--base-hidden 0: pass a multiple of 32"),
        ("--base-layers", "0", "--base-layers 0: pass a number >= 1"),
        ("--base-lr", "0", "--base-lr 0.0: pass a learning rate in (0, 1)"),
        ("--shad-lr", "1.5", "--shad-lr 1.5: pass a learning rate in (0, 1)"),
    ]:
        with pytest.raises(SystemExit):
            evidence.parse_args(["run", flag, value])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evidence.parse_args(["shuffles", "--shuffles", "0"])
    assert "--shuffles 0: pass a number >= 1" in capsys.readouterr().err


def test_mean_ld_figures_label_from_the_mean_of_the_first_k_tunes(benchmark_script):
    evidence = benchmark_script("evidence")
    gold = np.array([1, 1, 0, 0, 1, 0])
    lds = np.array(
        [
            [0.5, -0.1, -0.2, 0.003, 0.2, -1.0],  # 4/6 right at 0; 5/6 at the 0.005 margin
            [0.3, 0.3, -0.2, -0.1, 0.2, 0.2],  # the mean with it: [.4, .1, -.2, -.0485, .2, -.4]
            [-2.0, -2.0, 1.0, 1.0, -2.0, 1.0],  # every label flips in the mean of three
        ]
    )
    rows = evidence.mean_ld_figures(lds, gold)
    assert [row[:2] for row in rows] == [[4 / 6, 5 / 6], [1.0, 1.0], [0.0, 0.0]]
    assert rows[1][2] == 1.0 and rows[2][2] == 0.0  # AUROC of the mean LD: perfect, then inverted


def test_corpus_shape_options_reach_the_data_and_bad_shapes_are_refused(
    capsys, benchmark_script, tiny_tokenizer
):
    evidence = benchmark_script("evidence")
    from rft_trl.demo.pipeline import demo_data

    default = evidence.seed_settings(0, evidence.parse_args(["run"]))
    assert evidence.corpus_shape(default) == {"tools": [2, 2], "calls": [1, 3]}  # the demo's
    harder = evidence.seed_settings(
        0, evidence.parse_args(["run", "--tools", "3", "4", "--calls", "2", "3"])
    )
    assert evidence.corpus_shape(harder) == {"tools": [3, 4], "calls": [2, 3]}
    splits = demo_data(tiny_tokenizer, replace(harder, n_train=40, n_test=20))
    for sample in splits.train_samples + splits.test_samples:
        assert 3 <= len(sample.tools) <= 4 and 2 <= len(sample.calls) <= 3
        assert {call.name for call in sample.calls} <= set(sample.tools)
    plain = demo_data(tiny_tokenizer, replace(default, n_train=40, n_test=20))
    assert all(len(s.tools) == 2 and 1 <= len(s.calls) <= 2 for s in plain.train_samples)
    assert evidence.rows_at_the_cut(plain, 1024) == 0
    assert evidence.rows_at_the_cut(plain, 64) == 60  # every prompt is longer than that
    assert not default.spoken_values  # the demo's requests unless asked
    assert default.base.spoken_rate == 0.0
    seen = evidence.seed_settings(0, evidence.parse_args(["run", "--base-spoken-rate", "0.3"]))
    assert seen.base.spoken_rate == 0.3 and not seen.spoken_values
    with pytest.raises(SystemExit):
        evidence.parse_args(["run", "--base-spoken-rate", "1.2"])
    assert "--base-spoken-rate 1.2: pass a share in [0, 1]" in capsys.readouterr().err
    spoken = evidence.seed_settings(0, evidence.parse_args(["run", "--spoken-values"]))
    assert spoken.spoken_values and evidence.setup_of(spoken)["spoken_values"]
    said = demo_data(tiny_tokenizer, replace(spoken, n_train=40, n_test=20))
    pairs = list(zip(plain.train_samples, said.train_samples, strict=True))
    assert all(a.calls == b.calls and a.first_response == b.first_response for a, b in pairs)
    assert any(a.prompt_messages != b.prompt_messages for a, b in pairs)
    # the same held-out samples: only their requests' wording differs
    assert [s.sample_id for s in said.test_samples] == [s.sample_id for s in plain.test_samples]
    two = evidence.seed_settings(
        0, evidence.parse_args(["run", "--tools", "3", "4", "--calls", "2", "2"])
    )
    assert all(
        len(s.calls) == 2
        for s in demo_data(tiny_tokenizer, replace(two, n_train=30, n_test=1)).train_samples
    )
    for argv, message in [
        (["--tools", "2", "2", "--calls", "3", "3"], "--calls MIN=3 exceeds --tools MIN=2"),
        (["--tools", "0", "2"], "--tools MIN=0"),
        (["--tools", "4", "3"], "--tools MAX=3 is below --tools MIN=4"),
        (["--calls", "3", "1"], "--calls MAX=1 is below --calls MIN=3"),
        (["--tools", "3", "4", "--calls", "2", "9"], "pass --calls MAX <= --tools MAX (4)"),
    ]:
        with pytest.raises(SystemExit):
            evidence.parse_args(["run", *argv])
        err = capsys.readouterr().err
        assert message in err and "(the demo's values where not given)" in err


def test_resuming_with_another_corpus_shape_is_refused(tmp_path, benchmark_script):
    evidence = benchmark_script("evidence")
    results = tmp_path / "evidence.jsonl"
    args = evidence.parse_args(["run", "--seeds", "0", "--results", str(results)])
    setup = evidence.setup_of(evidence.seed_settings(0, args))
    record = {
        "kind": "seed",
        "seed": 0,
        "base_recipe": setup["base_recipe"],
        "settings": {"n_test": setup["n_test"], "budget": {"steps": setup["steps"]}},
    }
    # a record from before the corpus shape was recorded ran on the demo's corpus
    results.write_text(json.dumps(record) + "\n")
    assert evidence.check_resumable(results, [0], args) is None
    harder_argv = ["run", "--seeds", "0", "--tools", "3", "4", "--calls", "2", "3"]
    harder = evidence.parse_args(harder_argv)
    refusal = evidence.check_resumable(results, [0], harder)
    assert refusal is not None and "already holds seed 0 from another setup" in refusal
    assert "corpus {'tools': [2, 2], 'calls': [1, 3]} there" in refusal
    record["settings"]["corpus"] = {"tools": [3, 4], "calls": [2, 3]}
    results.write_text(json.dumps(record) + "\n")
    assert evidence.check_resumable(results, [0], harder) is None
    assert "corpus" in evidence.check_resumable(results, [0], args)
    # a record without the key had the plain requests; one with spoken values needs the flag
    spoken_refusal = evidence.check_resumable(
        results, [0], evidence.parse_args([*harder_argv, "--spoken-values"])
    )
    assert spoken_refusal is not None and "spoken_values False there, True now" in spoken_refusal
    record["settings"]["spoken_values"] = True
    results.write_text(json.dumps(record) + "\n")
    refusal = evidence.check_resumable(results, [0], harder)
    assert refusal is not None and "spoken_values True there, False now" in refusal
    spoken = evidence.parse_args([*harder_argv, "--spoken-values"])
    assert evidence.check_resumable(results, [0], spoken) is None
    # a record without a SHAD learning rate used the preset's: another rate's rows are refused
    faster = evidence.parse_args([*harder_argv, "--spoken-values", "--shad-lr", "3e-3"])
    refusal = evidence.check_resumable(results, [0], faster)
    assert refusal is not None and "shad_learning_rate 0.001 there, 0.003 now" in refusal
    record["settings"]["shad_learning_rate"] = 3e-3
    results.write_text(json.dumps(record) + "\n")
    assert evidence.check_resumable(results, [0], faster) is None
    assert "shad_learning_rate 0.003 there, 0.001 now" in evidence.check_resumable(
        results, [0], spoken
    )


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_device_cuda_without_a_gpu_is_refused_with_the_fix(capsys, benchmark_script):
    evidence = benchmark_script("evidence")
    with pytest.raises(SystemExit):
        evidence.parse_args(["run", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no CUDA GPU" in err and "--device cpu" in err


def test_after_reasoning_marks_tokens_that_follow_a_reasoning_response_token(benchmark_script):
    # Two rows: prompt tokens (-100) are never reasoning and never counted; the answer is in
    # response_arrays' order (row by row, response tokens only), and a row's first response token
    # looks at its own prompt, not at the previous row's last token.
    from datasets import Dataset

    from rft_trl.demo.metrics import response_arrays

    rows = Dataset.from_dict(
        {
            "input_ids": [[1, 2, 3, 4, 5], [6, 7, 8, 9]],
            "labels": [[-100, 2, 3, 4, -100], [-100, 7, 8, 9]],
            "gt_class": [[0, 1, 1, 1, 0], [0, 0, 1, 1]],
            "gt_category": [[0, 1, 1, 0, 0], [0, 0, 1, 1]],
            "gt_span_first": [[0, 1, 0, 0, 0], [0, 0, 1, 0]],
            "family": ["json", "react"],
        }
    )
    after = benchmark_script("evidence")._after_reasoning(rows)
    # flat over the rows, the second row's first response token would follow a reasoning token
    assert after.tolist() == [False, True, True, False, False, True]
    assert len(after) == len(response_arrays(rows)["gt"])


def test_summary_names_each_corpus_shape_with_its_seeds(tmp_path, benchmark_script):
    evidence = benchmark_script("evidence")
    recorded = ROOT / "benchmarks" / "results" / "evidence-gpu-h256-harder-150-steps.jsonl"
    harder = json.loads(recorded.read_text().splitlines()[0])  # a seed record, shape 3-4 / 2-3
    assert harder["kind"] == "seed" and harder["settings"]["corpus"]["tools"] == [3, 4]
    older = {**harder, "seed": 0, "settings": {}}  # before the shape was recorded: the demo's
    spoken = {**harder, "seed": 2, "settings": {**harder["settings"], "spoken_values": True}}
    faster = {**harder, "seed": 3, "settings": {**harder["settings"], "shad_learning_rate": 3e-3}}
    seed_rows = [older, {**harder, "seed": 1}, spoken, faster]
    runs = [_row(s, v, 0.3) for s in (0, 1, 2, 3) for v in ("sft", "rft")]
    lines = evidence.summary_markdown(seed_rows + runs).splitlines()
    assert lines[1] == (
        "Corpus shape per prompt: tools 2 to 2, calls 1 to 3 (seeds [0]); "
        "tools 3 to 4, calls 2 to 3 (seeds [1, 3]); tools 3 to 4, calls 2 to 3, spoken values "
        "(seeds [2])."
    )
    assert lines[2] == (
        "SHAD shuffle-tune learning rate (the RFT variants' labels): 0.001 (seeds [0, 1, 2]); "
        "0.003 (seeds [3])."
    )
    # with every seed at the default rate there is no such line
    plain = evidence.summary_markdown(seed_rows[:3] + runs[:6]).splitlines()
    assert plain[2] == "" and "SHAD shuffle-tune" not in "\n".join(plain)


def test_spoken_values_are_scored_apart_where_a_call_must_rewrite_one(benchmark_script):
    evidence = benchmark_script("evidence")
    from rft_trl.synthetic import default_world, generate_samples
    from rft_trl.synthetic.corpus import rewrites_a_value

    samples = generate_samples(60, "mixed", seed=3, spoken_values=True)
    plain = generate_samples(60, "mixed", seed=3)
    world = default_world()

    def said_in_words(call) -> bool:  # a date, a time or a whole number from 0 to 20
        kinds = {
            n: world.domains[world.tool(call.name).param(n).domain].kind for n in call.arguments
        }
        return any(
            kinds[n] in ("date", "time") or (kinds[n] == "int" and 0 <= v <= 20)
            for n, v in call.arguments.items()
        )

    rewrite = [any(said_in_words(c) for c in s.expected_calls) for s in samples]
    assert any(rewrite) and not all(rewrite)
    assert all(a.first_response == b.first_response for a, b in zip(plain, samples, strict=True))
    # right on every copy prompt, wrong on every rewrite prompt
    responses = [
        "nonsense" if r else s.first_response for s, r in zip(samples, rewrite, strict=True)
    ]
    scores = evidence.rewrite_scores(samples, responses)
    assert [rewrites_a_value(s) for s in samples] == rewrite
    settings = evidence.seed_settings(0, evidence.parse_args(["run"]))
    plain_scores = evidence.held_out_scores(settings, samples, responses)
    assert not any(k.startswith(("rewrite/", "copy/")) for k in plain_scores)
    spoken_scores = evidence.held_out_scores(
        replace(settings, spoken_values=True), samples, responses
    )
    assert spoken_scores == {**plain_scores, **scores}
    assert scores["rewrite/n"] == sum(rewrite) and scores["copy/n"] == len(samples) - sum(rewrite)
    assert scores["copy/exact_match"] == scores["copy/format_valid"] == 1.0
    assert scores["rewrite/exact_match"] == scores["rewrite/format_valid"] == 0.0
    runs = []
    for seed in (0, 1):
        for variant, exact in (("sft", 0.5), ("rft", 0.75)):
            row = _row(seed, variant, exact)
            row["evaluation"] = {"rewrite/exact_match": exact, "rewrite/format_valid": 1.0}
            row["evaluation"] |= {"copy/exact_match": 1.0, "copy/format_valid": 1.0}
            runs.append(row)
    text = evidence.summary_markdown(runs)
    assert "Spoken values: prompts whose calls rewrite a value" in text
    assert (
        "| rft | 75.00 ± 0.00 | 25.00 ± 0.00 | 100.00 ± 0.00 | 100.00 ± 0.00 | 0.00 ± 0.00 |"
        in text
    )
    assert "Spoken values" not in evidence.summary_markdown([_row(0, "sft", 0.5)])
