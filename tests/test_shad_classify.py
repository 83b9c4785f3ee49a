"""Classification, re-thresholding, health checks and settings validation (no model involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from datasets import Dataset

from rft_trl.demo.base_model import BaseRecipe, base_path
from rft_trl.options import RFTConfigError
from rft_trl.shad import ShadSettings, reclassify
from rft_trl.shad.classify import classify
from rft_trl.shad.health import (
    PROBE_RISE_NATS,
    boilerplate_warning,
    drift_warning,
    ld_histogram,
    probe_result,
    saturation_warning,
)
from rft_trl.shad.report import ShadReport


def test_classify_rule_and_ignored_positions():
    l_o = np.array([0.0, 1.0, 1.0, 1.0, 2.0], np.float32)
    l_s = np.array([0.0, 0.5, 1.0, 1.2, 9.0], np.float32)
    in_loss = np.array([False, True, True, True, True])
    assert classify(l_o, l_s, in_loss, 0.0).tolist() == [-100, 0, 0, 1, 1]
    assert classify(l_o, l_s, in_loss, 0.5).tolist() == [-100, 0, 0, 0, 1]
    assert classify(l_o, l_s, in_loss, -1.0).tolist() == [-100, 1, 1, 1, 1]
    assert classify(l_o, l_s, in_loss, 0.0).dtype == np.int8


def test_reclassify_changes_only_token_class():
    ds = Dataset.from_dict(
        {
            "input_ids": [[1, 2, 3]],
            "labels": [[-100, 2, 3]],
            "token_class": [[-100, 1, 1]],
            "shad_l_o": [[0.0, 1.0, 1.0]],
            "shad_l_s": [[0.0, 1.05, 3.0]],
            "extra": ["kept"],
        }
    )
    out = reclassify(ds, 0.1)
    assert out["token_class"] == [[-100, 0, 1]]
    assert out["shad_l_o"] == ds["shad_l_o"] and out["extra"] == ["kept"]
    assert str(out.features["token_class"].feature.dtype) == "int8"
    with pytest.raises(ValueError, match="shad_l_o"):
        reclassify(ds.remove_columns("shad_l_o"), 0.0)


def test_histogram_bins_are_right_closed_around_the_threshold():
    hist = ld_histogram(np.array([-10.0, -0.1, 0.0, 1e-6, 0.1, 10.0]))
    assert sum(hist.counts) == 6
    edges = [-math.inf, *hist.edges, math.inf]
    by_bin = {(edges[i], edges[i + 1]): c for i, c in enumerate(hist.counts) if c}
    assert by_bin == {
        (-math.inf, -4.0): 1,
        (-0.5, -0.1): 1,
        (-0.01, 0.0): 1,
        (0.0, 0.01): 1,
        (0.01, 0.1): 1,
        (4.0, math.inf): 1,
    }
    text = hist.render(threshold=0.0)
    assert "<- threshold" in text.splitlines()[6] and text.count("<- threshold") == 1


@pytest.mark.parametrize(("fraction", "word"), [(0.3, "below"), (0.99, "above"), (0.7, None)])
def test_boilerplate_fraction_warning(fraction, word):
    message = boilerplate_warning(fraction)
    assert (message is None) == (word is None)
    if word:
        assert word in message and "shad_" in message


def test_saturation_warning_when_the_base_already_knows_the_format():
    assert saturation_warning(np.full(10, 0.001)) is not None
    assert saturation_warning(np.full(10, 2.0)) is None


def test_drift_warning_counts_saturated_tokens_labelled_reasoning_by_a_hair():
    l_o = np.array([0.001] * 8 + [2.0] * 2)
    drifting = np.array([0.002] * 8 + [0.002] * 2)  # 80% saturated and within the drift band
    message = drift_warning(l_o, drifting, threshold=0.0)
    assert message is not None and "80.0%" in message and "shad_threshold: 0.005" in message
    assert drift_warning(l_o, drifting, threshold=0.005) is None  # the margin already covers it
    assert drift_warning(l_o, np.full(10, 0.5), threshold=0.0) is None  # clear rises are signal
    assert drift_warning(np.full(10, 2.0), drifting, threshold=0.0) is None  # not saturated
    assert drift_warning(np.zeros(0), np.zeros(0), threshold=0.0) is None


def test_probe_verdicts():
    own = np.zeros(100)
    ready = probe_result(np.where(np.arange(100) < 30, 5.0, 0.0), own, np.arange(100) < 15)
    assert ready.ready and ready.verdict.startswith("OK") and ready.share == pytest.approx(0.3)
    assert ready.reasoning_share_of_risen == pytest.approx(0.5)
    flat = probe_result(np.full(100, PROBE_RISE_NATS * 0.9), own)
    assert not flat.ready and flat.verdict.startswith("NOT READY") and flat.risen == 0
    weak = probe_result(np.where(np.arange(100) < 3, 5.0, 0.0), own)
    assert not weak.ready and weak.verdict.startswith("WEAK")


def test_report_roundtrips_through_a_dict_and_summarises():
    report = ShadReport(
        rows=3, response_tokens=10, boilerplate_tokens=7, histogram=ld_histogram(np.zeros(10))
    )
    report.probe = probe_result(np.ones(4) * 3, np.zeros(4))
    report.warnings.append("careful")
    again = ShadReport.from_dict(report.to_dict())
    assert again == report
    text = report.summary()
    assert "70.0%" in text and "Prompt-swap probe" in text and "WARNING: careful" in text


def test_settings_defaults_come_from_the_option_table():
    s = ShadSettings()
    assert (s.sample_ratio, s.min_steps, s.threshold, s.seed) == (0.01, 50, 0.0, 42)
    s = ShadSettings.from_options(
        {"shad_min_steps": 3, "shad_threshold": 0.05, "rft": True, "other": 1}
    )
    assert s.min_steps == 3 and s.threshold == 0.05
    assert ShadSettings.from_options(s.to_options()) == s


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sample_ratio", 0.0),
        ("sample_ratio", 1.5),
        ("min_steps", 0),
        ("num_epochs", -1.0),
        ("threshold", math.nan),
    ],
)
def test_settings_reject_invalid_values_naming_key_and_fix(key, value):
    with pytest.raises(RFTConfigError, match=rf"shad_{key}.*Fix"):
        ShadSettings(**{key: value})


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RFT_TRL_CACHE", str(tmp_path / "env"))
    assert ShadSettings().resolved_cache_dir() == tmp_path / "env"
    assert ShadSettings(cache_dir=str(tmp_path / "x")).resolved_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("RFT_TRL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ShadSettings().resolved_cache_dir() == tmp_path / "xdg" / "rft-trl"
    # one folder for everything the package caches: the demo's base sits beside the SHAD labels
    assert base_path(BaseRecipe()).parent == ShadSettings().resolved_cache_dir()
