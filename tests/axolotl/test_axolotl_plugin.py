"""`RFTPlugin` hooks: inert unless `rft: true`, the right collators, entry points in the metadata."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytestmark = pytest.mark.axolotl


@pytest.fixture(scope="module")
def plugin(axolotl_available):
    from rft_trl.integrations.axolotl import RFTPlugin

    return RFTPlugin()


def _cfg(**values):
    from axolotl.utils.dict import DictDefault

    return DictDefault({"model_config_type": "llama", "attn_implementation": "sdpa", **values})


@pytest.mark.parametrize("rft", [None, False])
def test_every_config_hook_is_inert_without_rft(plugin, rft):
    values = {} if rft is None else {"rft": rft}
    cfg = _cfg(sample_packing=True, eval_sample_packing=True, **values)
    assert plugin.get_trainer_cls(cfg) is None
    assert plugin.get_training_args(cfg) is None
    # None, not (None, None): Axolotl takes any non-None value as a chosen collator.
    assert plugin.get_collator_cls_and_kwargs(cfg, is_eval=False) is None
    assert plugin.get_collator_cls_and_kwargs(cfg, is_eval=True) is None
    assert plugin.post_trainer_create(cfg, trainer=object()) is None


def test_collator_choice_follows_axolotls(plugin):
    from rft_trl.integrations.axolotl import collator

    plain = _cfg(rft=True)
    assert plugin.get_collator_cls_and_kwargs(plain) == (collator.RFTDataCollator, {})
    packed = _cfg(rft=True, sample_packing=True, eval_sample_packing=False)
    assert plugin.get_collator_cls_and_kwargs(packed)[0] is collator.RFTV2BatchSamplerDataCollator
    assert plugin.get_collator_cls_and_kwargs(packed, is_eval=True)[0] is collator.RFTDataCollator
    # Evaluation packs only under the multipack sampler, i.e. with `sample_packing` on too;
    # otherwise a packing collator would join a plain eval batch into one row.
    eval_only = _cfg(rft=True, sample_packing=False, eval_sample_packing=True)
    assert (
        plugin.get_collator_cls_and_kwargs(eval_only, is_eval=True)[0] is collator.RFTDataCollator
    )
    both = _cfg(rft=True, sample_packing=True, eval_sample_packing=True)
    assert (
        plugin.get_collator_cls_and_kwargs(both, is_eval=True)[0]
        is collator.RFTV2BatchSamplerDataCollator
    )
    llama_flash = _cfg(rft=True, sample_packing=True, attn_implementation="flash_attention_2")
    assert (
        plugin.get_collator_cls_and_kwargs(llama_flash)[0] is collator.RFTV2BatchSamplerDataCollator
    )
    # A model type without Axolotl's multipack patch, with varlen flash attention.
    other_flash = _cfg(
        rft=True,
        sample_packing=True,
        attn_implementation="flash_attention_2",
        model_config_type="gpt2",
    )
    assert (
        plugin.get_collator_cls_and_kwargs(other_flash)[0] is collator.RFTBatchSamplerDataCollator
    )


def test_trainer_class_with_rft(plugin):
    from axolotl.core.trainers.base import AxolotlTrainer

    from rft_trl.integrations.axolotl.trainer import RFTAxolotlTrainer

    assert plugin.get_trainer_cls(_cfg(rft=True)) is RFTAxolotlTrainer
    assert issubclass(RFTAxolotlTrainer, AxolotlTrainer)


def test_a_foreign_trainer_fails_loudly(plugin):
    from rft_trl.integrations.axolotl.plugin import RFTConfigConflictError

    with pytest.raises(RFTConfigConflictError, match="another plugin"):
        plugin.post_trainer_create(_cfg(rft=True), trainer=object())


def test_plugin_entry_point_resolves_to_the_class(axolotl_available):
    """What Axolotl >= 0.20 loads automatically (0.19 ignores this group)."""
    from rft_trl.integrations.axolotl import RFTPlugin

    found = {ep.name: ep for ep in entry_points(group="axolotl.plugins")}
    assert "rft" in found, "reinstall: .venv-axolotl/bin/pip install --no-deps -e ."
    assert found["rft"].value == "rft_trl.integrations.axolotl:RFTPlugin"
    assert found["rft"].load() is RFTPlugin


def test_cli_command_entry_point_is_a_click_command(axolotl_available):
    import click

    found = {ep.name: ep for ep in entry_points(group="axolotl.cli_commands")}
    assert isinstance(found["rft-check"].load(), click.Command)


def test_plugin_path_in_the_configs_loads(axolotl_available):
    """The dotted path users put under `plugins:` resolves the way Axolotl resolves it."""
    from axolotl.integrations.base import load_plugin

    from rft_trl.integrations.axolotl import RFTPlugin
    from rft_trl.integrations.axolotl.checks import PLUGIN_PATH

    assert isinstance(load_plugin(PLUGIN_PATH), RFTPlugin)
