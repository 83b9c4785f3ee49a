"""`rft-trl check-config` / `axolotl rft-check`: `rft: true` must never train plain SFT silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rft_trl.commands.check_config import check_file, check_mapping
from rft_trl.integrations.axolotl.checks import PLUGIN_PATH

pytestmark = pytest.mark.axolotl

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "plugin_configs" / "axolotl").glob("*.yaml"))


@pytest.fixture
def rft_args(axolotl_available):
    from rft_trl.integrations.axolotl.args import RFTArgs

    return RFTArgs


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(path: Path, capsys) -> tuple[int, str]:
    from rft_trl.cli import main

    code = main(["check-config", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_axolotl_configs_pass(config, capsys):
    code, output = _run(config, capsys)
    assert code == 0, output
    assert "RFT on" in output


def test_missing_plugin_line_is_an_error_with_the_fix(tmp_path, capsys):
    data = yaml.safe_load(CONFIGS[0].read_text())
    data.pop("plugins")
    code, output = _run(_write(tmp_path, data), capsys)
    assert code == 1
    assert "not in `plugins:`" in output
    assert PLUGIN_PATH in output


def test_misspelled_plugin_path_is_an_error(tmp_path):
    data = {"base_model": "m", "rft": True, "plugins": ["rft_trl.integrations.axolotl.RFTPlugn"]}
    result = check_mapping(data)
    assert not result.ok
    assert any("RFTPlugn" in e for e in result.errors)


def test_values_and_unknown_keys_are_reported_by_name(tmp_path, capsys):
    data = {
        "base_model": "m",
        "plugins": [PLUGIN_PATH],
        "rft": True,
        "rft_temprature": 2.0,
        "shad_min_steps": 2.5,
        "shad_learning_rate": "1e-4",
    }
    code, output = _run(_write(tmp_path, data), capsys)
    assert code == 1
    assert "rft_temprature" in output
    assert "shad_min_steps" in output
    assert "`shad_learning_rate`" not in output  # a YAML string number is fine


def test_conflicting_loss_flag_is_an_error():
    data = {"base_model": "m", "plugins": [PLUGIN_PATH], "rft": True, "cut_cross_entropy": True}
    result = check_mapping(data)
    assert any("cut_cross_entropy" in e for e in result.errors)


def test_rft_keys_with_rft_false_warn(tmp_path, capsys):
    data = {"base_model": "m", "plugins": [PLUGIN_PATH], "rft": False, "rft_temperature": 2.0}
    code, output = _run(_write(tmp_path, data), capsys)
    assert code == 0
    assert "warning" in output and "rft_temperature" in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rft_temperature": 2.0}, "add `rft: true`"),  # the switch forgotten
        ({"rtf": True, "rft_temperature": 2.0}, "rename 'rtf' to `rft`"),
        ({"RFT": True}, "rename 'RFT' to `rft`"),
    ],
)
def test_rft_meant_but_not_switched_on_is_an_error(tmp_path, capsys, rft_args, extra, message):
    """Axolotl would train plain SFT without a word (the plugin is loaded but inert)."""
    from pydantic import ValidationError

    data = {"base_model": "m", "plugins": [PLUGIN_PATH], **extra}
    code, output = _run(_write(tmp_path, data), capsys)
    assert code != 0 and message in output
    with pytest.raises(ValidationError, match=re.escape(message)):
        rft_args(**extra)  # what `axolotl train` validates the config with


def test_a_validated_config_dumped_with_every_default_validates_again(rft_args):
    """Axolotl dumps a validated config with each plugin field at its default: without `rft`,
    that must not read as RFT keys set without the switch."""
    dumped = rft_args().model_dump(exclude_none=True)
    assert dumped and "rft" not in dumped
    rft_args(**dumped)


def test_trl_config_is_validated_too():
    data = {"model_name_or_path": "m", "dataset_name": "d", "rft": True, "rft_temperature": 0}
    result = check_mapping(data)
    assert result.kind == "trl"
    assert any("rft_temperature" in e for e in result.errors)
    assert check_mapping({"model_name_or_path": "m", "rft": True}).ok


def test_unreadable_file_exits_2(tmp_path, capsys):
    from rft_trl.cli import main

    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert main(["check-config", str(tmp_path / "list.yaml")]) == 2
    capsys.readouterr()


def test_axolotl_cli_subcommand(tmp_path, axolotl_cli):
    data = yaml.safe_load(CONFIGS[0].read_text())
    assert check_file(_write(tmp_path, data)).ok
    data.pop("plugins")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = axolotl_cli("rft-check", str(bad), timeout=300)
    assert result.returncode == 1, result.stdout[-3000:]
    assert PLUGIN_PATH in result.stdout
