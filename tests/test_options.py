"""The option table: validation messages, RFTConfig fields, and the generated docs."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from rft_trl.docs_gen import configuration_markdown
from rft_trl.options import (
    OPTIONS,
    RFTConfigError,
    unknown_keys,
    unknown_keys_message,
    validate_options,
)

pytestmark = pytest.mark.trl_compat


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rft_temperature", 0),
        ("rft_temperature", -1.0),
        ("rft_temperature", "hot"),
        ("rft_reasoning_weight", 0.0),
        ("rft_reasoning_weight", 1.0),
        ("rft_group_scope", "global"),
        ("shad_sample_ratio", 0.0),
        ("shad_sample_ratio", 1.5),
        ("shad_min_steps", 0),
        ("shad_min_steps", 2.5),
        ("shad_seed", -1),
        ("shad_seed", 2**32),
        ("rft", "yes"),
    ],
)
def test_invalid_values_name_key_value_and_fix(key, value):
    with pytest.raises(RFTConfigError) as info:
        validate_options({key: value})
    message = str(info.value)
    assert f"`{key}`" in message and repr(value) in message and "Fix:" in message


def test_defaults_are_valid():
    validate_options({name: option.default for name, option in OPTIONS.items()})


def test_fixed_weight_with_gradient_through_weights_is_rejected():
    with pytest.raises(RFTConfigError, match="rft_detach_weights"):
        validate_options({"rft_reasoning_weight": 0.7, "rft_detach_weights": False})


def test_unknown_rft_keys_are_reported():
    assert unknown_keys({"rft_temprature": 2, "rft": True, "learning_rate": 1e-4}) == [
        "rft_temprature"
    ]


def test_unknown_key_message_names_the_likely_key_and_every_valid_one():
    message = unknown_keys_message(["rft_temprature", "shad_xyz"], "cfg.yaml")
    assert "cfg.yaml" in message
    assert "rft_temprature (did you mean rft_temperature?)" in message
    assert "shad_xyz." in message  # nothing close: no guess
    assert all(key in message for key in OPTIONS)


def test_rft_config_has_every_key_with_table_defaults(tmp_path):
    from rft_trl.config import RFTConfig

    names = {f.name for f in fields(RFTConfig)}
    assert set(OPTIONS) <= names
    config = RFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    assert config.rft_options() == {name: option.default for name, option in OPTIONS.items()}
    with pytest.raises(RFTConfigError, match="rft_temperature"):
        RFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, rft_temperature=0.0)


def test_configuration_doc_is_current():
    doc = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    assert doc.read_text() == configuration_markdown(), (
        "run `python -m rft_trl.docs_gen` and commit the result"
    )
    for name in OPTIONS:
        assert f"`{name}`" in doc.read_text()
