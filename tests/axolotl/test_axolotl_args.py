"""The plugin's config keys: derived from the option table, validated when Axolotl loads a YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from rft_trl.options import OPTIONS

pytestmark = pytest.mark.axolotl


@pytest.fixture(scope="module")
def rft_args(axolotl_available):
    from rft_trl.integrations.axolotl.args import RFTArgs

    return RFTArgs


def test_fields_are_the_option_table(rft_args):
    assert list(rft_args.model_fields) == list(OPTIONS)
    for name, field in rft_args.model_fields.items():
        assert field.description == OPTIONS[name].help
        expected = None if name == "rft" else OPTIONS[name].default
        assert field.default == expected, name


def test_training_args_mixin_has_every_key(axolotl_available):
    import dataclasses

    from rft_trl.integrations.axolotl.args import RFTTrainingArgsMixin

    assert [f.name for f in dataclasses.fields(RFTTrainingArgsMixin)] == list(OPTIONS)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"rft_temperature": -1.0}, "rft_temperature"),
        ({"rft_temperature": "hot"}, "rft_temperature"),
        ({"rft_temperature": True}, "rft_temperature"),
        ({"shad_min_steps": 2.5}, "shad_min_steps"),
        ({"shad_sample_ratio": 2}, "shad_sample_ratio"),
        ({"rft_group_scope": "global"}, "rft_group_scope"),
        ({"rft_temprature": 2.0}, "rft_temprature"),
        ({"shad_treshold": 0.1}, "shad_treshold"),
        ({"rft_reasoning_weight": 0.3, "rft_detach_weights": False}, "rft_detach_weights"),
    ],
)
def test_bad_values_name_the_key(rft_args, values, key):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=key):
        rft_args(rft=True, **values)  # with the switch on: the value itself is what fails


def test_yaml_scientific_notation_string_is_a_number(rft_args):
    # PyYAML reads `1e-4` as a string; Axolotl's own float keys accept it, so ours must too.
    assert rft_args(rft=True, shad_learning_rate="1e-4").shad_learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"cut_cross_entropy": True}, "cut_cross_entropy"),
        (
            {"plugins": ["axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"]},
            "cut_cross_entropy",
        ),
        ({"liger_fused_linear_cross_entropy": True}, "liger_fused_linear_cross_entropy"),
        ({"rl": "dpo"}, "rl"),
        ({"kd_trainer": True}, "kd_trainer"),
        ({"context_parallel_size": 2}, "context_parallel_size"),
        ({"train_on_inputs": True}, "train_on_inputs"),
        ({"qat": {"weight_dtype": "int8"}}, "qat"),
        ({"do_bench_eval": True}, "do_bench_eval"),
        ({"torch_compile": True}, "torch_compile"),
        ({"plugins": ["axolotl.integrations.diffusion.DiffusionPlugin"]}, "diffusion"),
        ({"datasets": [{"path": "x", "type": "chat_template", "train_on_eos": "all"}]}, "eos"),
        ({"datasets": [{"path": "x", "type": "chat_template", "train_on_eot": "all"}]}, "eot"),
    ],
)
def test_loss_replacing_settings_are_refused_with_rft(rft_args, values, key):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=key):
        rft_args(rft=True, **values)
    rft_args(rft=False, **values)  # inert plugin: no opinion


def test_options_from_cfg_fills_dropped_defaults(axolotl_available):
    from rft_trl.integrations.axolotl.args import options_from_cfg

    # Axolotl dumps the config with exclude_none, so unset nullable keys are simply missing.
    options = options_from_cfg({"rft": True, "rft_temperature": 2.0})
    assert options["rft"] is True
    assert options["rft_temperature"] == 2.0
    assert options["shad_labels_path"] is None
    assert options["shad_min_steps"] == OPTIONS["shad_min_steps"].default


def test_axolotl_load_cfg_rejects_bad_values_naming_the_key(make_config):
    from axolotl.cli.config import load_cfg

    with pytest.raises(Exception, match="rft_temperature"):
        load_cfg(str(make_config("bad-type", rft_temperature="hot")))
    with pytest.raises(Exception, match="rft_temprature"):
        load_cfg(str(make_config("bad-key", rft_temprature=2.0)))


def test_axolotl_load_cfg_keeps_the_keys(make_config):
    from axolotl.cli.config import load_cfg

    cfg = load_cfg(str(make_config("keys", rft_temperature=2.5, shad_learning_rate="2e-4")))
    assert cfg.rft is True
    assert cfg.rft_temperature == 2.5
    assert cfg.shad_learning_rate == pytest.approx(2e-4)


def test_without_the_plugin_line_axolotl_drops_rft_silently(make_config):
    """Pins the Axolotl 0.19 behaviour that `rft-trl check-config` exists to catch."""
    from axolotl.cli.config import load_cfg

    cfg = load_cfg(str(make_config("no-plugin", plugins=None)))
    assert cfg.get("rft") is None


@pytest.mark.parametrize(
    "config",
    sorted((Path(__file__).resolve().parents[2] / "plugin_configs" / "axolotl").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_configs_pass_axolotls_schema(config, tmp_path, axolotl_available):
    """The example configs are valid Axolotl configs with the plugin merged (no model needed)."""
    import yaml
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    data = yaml.safe_load(config.read_text())
    if data.get("deepspeed"):  # fetched by `axolotl fetch deepspeed_configs` in real use
        stub = tmp_path / "zero2.json"
        stub.write_text('{"zero_optimization": {"stage": 2}}')
        data["deepspeed"] = str(stub)
    cfg = DictDefault(data)
    prepare_plugins(cfg)
    validated = validate_config(cfg)
    assert validated.rft is True
    assert validated.plugins == ["rft_trl.integrations.axolotl.RFTPlugin"]
