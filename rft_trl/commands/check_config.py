"""`rft-trl check-config CONFIG.yaml`: catch RFT settings that training would reject or silently ignore.

Reads an Axolotl or a TRL (`trl sft` / `rft-trl train`) YAML without importing either framework.
The case it exists for: Axolotl 0.19 loads plugins only from `plugins:`, and without the RFT
plugin there it drops `rft: true` without a word and trains plain SFT. It also validates every
`rft_*`/`shad_*` value against the option table and reports unknown `rft_*`/`shad_*` keys.
Exit status: 0 fine (warnings may be printed), 1 problems found, 2 the file cannot be read.
Axolotl users can run the same check as `axolotl rft-check CONFIG.yaml`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rft_trl.integrations.axolotl.checks import (
    PLUGIN_PATH,
    check_conflicts,
    check_rft_switch,
    check_unknown_keys,
    plugin_listed,
)
from rft_trl.options import OPTIONS, RFTConfigError, validate_options

KINDS = ("auto", "axolotl", "trl")
_AXOLOTL_KEYS = ("base_model", "sequence_len", "micro_batch_size", "plugins", "adapter")
_TRL_KEYS = ("model_name_or_path", "dataset_name", "max_length", "per_device_train_batch_size")
_PLUGIN_FIX = f"plugins:\n  - {PLUGIN_PATH}"


@dataclass
class CheckResult:
    """What `check-config` found in one YAML."""

    path: str
    kind: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rft: bool = False

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors


class UnreadableConfigError(ValueError):
    """The file is missing, is not YAML, or is not a mapping of keys."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `rft-trl check-config`."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="An Axolotl or TRL training YAML.")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help="Which trainer reads the YAML (default: guessed from its keys).",
    )


def run(args: argparse.Namespace) -> int:
    """Check the file and print the findings; the exit status says whether training is safe."""
    try:
        result = check_file(args.config, kind=args.kind)
    except UnreadableConfigError as error:
        print(f"rft-trl check-config: error: {error}", file=sys.stderr)
        return 2
    return print_result(result)


def print_result(result: CheckResult) -> int:
    """Print a result (errors to stderr); return the exit status (0 ok, 1 errors)."""
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    if result.ok:
        state = "RFT on" if result.rft else "RFT off (trains plain SFT)"
        print(f"{result.path}: OK ({result.kind} config, {state}).")
        return 0
    print(f"{result.path}: {len(result.errors)} problem(s); fix them before training.")
    return 1


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping at `path`."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise UnreadableConfigError(f"{path} does not exist or is not a file.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise UnreadableConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise UnreadableConfigError(f"{path} does not hold a mapping of config keys.")
    return dict(data)


def check_file(path: str | Path, kind: str = "auto") -> CheckResult:
    """Check the YAML at `path` (see the module docstring)."""
    result = check_mapping(load_yaml(path), kind=kind, path=str(path))
    if result.kind == "trl" and result.ok:
        # What `rft-trl train` refuses before loading anything: keys no argument class takes,
        # launcher keys, values of the wrong type, `dataset_streaming`, a missing model.
        from rft_trl.recipe import RecipeError, parse_recipe

        # The config is checked, not this machine: precision flags that need a GPU are parsed
        # as off here (TrainingArguments refuses bf16/tf32 on a CPU-only machine).
        on_any_machine = ["--bf16", "false", "--fp16", "false", "--tf32", "false"]
        try:
            parse_recipe(str(path), [*on_any_machine, "--use_cpu", "true"])
        except (RecipeError, RFTConfigError) as error:
            result.errors.append(str(error))
    return result


def check_mapping(
    data: Mapping[str, Any], kind: str = "auto", path: str = "<config>"
) -> CheckResult:
    """Check a config mapping as the given trainer (`axolotl`, `trl`, or `auto` to guess)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "auto":
        kind = _guess_kind(data)
    result = CheckResult(path=path, kind=kind)
    values = {k: _coerce(k, v) for k, v in data.items() if k in OPTIONS and v is not None}
    try:
        check_unknown_keys(data)
    except RFTConfigError as error:
        result.errors.append(str(error))
    for key, value in values.items():
        try:
            OPTIONS[key].validate(value)
        except RFTConfigError as error:
            result.errors.append(str(error))
    if not result.errors:
        try:
            validate_options(values)
        except RFTConfigError as error:
            result.errors.append(str(error))
    if kind == "axolotl":
        _check_axolotl(data, result)
    else:
        _check_trl(data, result)
    return result


def _guess_kind(data: Mapping[str, Any]) -> str:
    axolotl = sum(k in data for k in _AXOLOTL_KEYS)
    trl = sum(k in data for k in _TRL_KEYS)
    return "trl" if trl > axolotl else "axolotl"


def _coerce(key: str, value: Any) -> Any:
    """YAML reads `1e-4` as a string; both trainers' parsers turn it into a number."""
    if OPTIONS[key].type in (float, int) and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if OPTIONS[key].type is int and number.is_integer() else number
    return value


def _check_axolotl(data: Mapping[str, Any], result: CheckResult) -> None:
    result.rft = bool(data.get("rft"))
    ours = [p for p in data.get("plugins") or () if "rft_trl" in str(p)]
    for plugin in ours:
        if str(plugin).strip() != PLUGIN_PATH:
            result.errors.append(
                f"`plugins:` lists {plugin!r}, which is not the RFT plugin's path; Axolotl only "
                f"logs a plugin it cannot import and trains without it. Fix: use {PLUGIN_PATH!r}."
            )
    rft_keys = sorted(k for k in data if k in OPTIONS and k != "rft")
    if result.rft and not plugin_listed(data):
        result.errors.append(
            "`rft: true` but the RFT plugin is not in `plugins:`. Axolotl 0.19 loads plugins only "
            "from that list and silently drops unknown keys, so this config would train plain "
            f"SFT. Fix: add\n{_indent(_PLUGIN_FIX)}\n(Axolotl >= 0.20 also loads it through the "
            "`axolotl.plugins` entry point, but listing it works everywhere.)"
        )
    try:
        check_rft_switch(data)
    except RFTConfigError as error:
        result.errors.append(str(error))
    if rft_keys and not result.rft and data.get("rft") is not None:
        result.warnings.append(
            f"{rft_keys} are set but `rft` is not true, so the plugin is inert and these keys do "
            "nothing. Fix: add `rft: true` (or remove the keys)."
        )
    if result.rft:
        try:
            check_conflicts(data)
        except RFTConfigError as error:
            result.errors.append(str(error))
        if importlib.util.find_spec("axolotl") is None:
            result.warnings.append(
                "Axolotl is not installed in this Python environment; install rft-trl in the "
                "environment that runs `axolotl train` so the plugin can be imported there."
            )


def _check_trl(data: Mapping[str, Any], result: CheckResult) -> None:
    result.rft = bool(data.get("rft", OPTIONS["rft"].default))
    if "plugins" in data:
        result.warnings.append(
            "`plugins:` is an Axolotl key; TRL ignores it. Pass --kind axolotl if this is an "
            "Axolotl config."
        )
    if "rft" not in data:
        result.warnings.append(
            "`rft` is not set; `rft-trl train` and RFTConfig default to `rft: true`. "
            "Train this config with `rft-trl train --config`, not `trl sft`."
        )
    if result.rft:
        from types import SimpleNamespace

        from rft_trl.trainer import trl_args_conflicts

        # The TRL settings RFTTrainer refuses, read from the raw YAML (TRL's defaults otherwise).
        conflicts = trl_args_conflicts(SimpleNamespace(**data))
        if conflicts:
            result.errors.append("`rft: true` cannot be combined with " + "; ".join(conflicts))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
