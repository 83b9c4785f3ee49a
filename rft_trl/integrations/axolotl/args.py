"""The `rft_*`/`shad_*` keys for Axolotl's config schema and training args, derived from `OPTIONS`.

Axolotl merges `RFTArgs` into its pydantic config, so a bad value fails when `axolotl train`
loads the YAML, with the key named. `rft` defaults to None here (unlike `RFTConfig`): a loaded
plugin must be inert until a config asks for RFT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from rft_trl.integrations.axolotl.checks import (
    check_conflicts,
    check_rft_switch,
    check_unknown_keys,
)
from rft_trl.options import OPTIONS, RFTConfigError, validate_options


def _annotation(name: str) -> Any:
    option = OPTIONS[name]
    return option.type | None if option.nullable or name == "rft" else option.type


def _field(name: str) -> tuple[Any, Any]:
    option = OPTIONS[name]
    default = None if name == "rft" else option.default
    return _annotation(name), Field(default=default, description=option.help)


def _reject_bool(cls, value: Any, info) -> Any:
    """YAML `true` must not pass as the number 1 for a numeric key."""
    option = OPTIONS[info.field_name]
    if isinstance(value, bool) and option.type is not bool:
        raise RFTConfigError(
            f"Invalid value for `{option.name}`: {value!r}. Valid: {option.valid}. "
            f"Fix: set `{option.name}` to a valid value, or remove it to use the default "
            f"({option.default!r})."
        )
    return value


def _check_option(cls, value: Any, info) -> Any:
    """The option table's own check, after pydantic's coercion (so YAML `1e-4` strings work)."""
    if value is None and info.field_name == "rft":
        return value
    OPTIONS[info.field_name].validate(value)
    return value


def _check_config(cls, data: Any) -> Any:
    """Whole-config checks on the raw YAML: typos in `rft_*`/`shad_*` keys, conflicting flags."""
    if isinstance(data, Mapping):
        check_unknown_keys(data)
        check_rft_switch(data)
        check_conflicts(data)
    return data


def _check_combination(self):
    """Key combinations the option table forbids (e.g. a fixed weight with non-detached weights)."""
    validate_options({name: getattr(self, name) for name in OPTIONS if name != "rft"})
    return self


RFTArgs: type[BaseModel] = create_model(
    "RFTArgs",
    __module__=__name__,
    __doc__="Axolotl config keys of SHAD + RFT (see docs/configuration.md).",
    __validators__={
        "reject_bool": field_validator(*OPTIONS, mode="before")(_reject_bool),
        "check_option": field_validator(*OPTIONS, mode="after")(_check_option),
        "check_config": model_validator(mode="before")(_check_config),
        "check_combination": model_validator(mode="after")(_check_combination),
    },
    **{name: _field(name) for name in OPTIONS},
)

RFTTrainingArgsMixin = dataclasses.make_dataclass(
    "RFTTrainingArgsMixin",
    [
        (name, _annotation(name) | None, dataclasses.field(default=None, metadata={"help": o.help}))
        for name, o in OPTIONS.items()
    ],
    namespace={
        "__doc__": "The RFT keys on `trainer.args` (informational; the trainer reads cfg).",
        "__module__": __name__,
    },
)


def options_from_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The full option dict of a validated Axolotl cfg (keys Axolotl dropped as None take defaults)."""
    options = {name: cfg.get(name, option.default) for name, option in OPTIONS.items()}
    options = {
        name: (OPTIONS[name].default if value is None and not OPTIONS[name].nullable else value)
        for name, value in options.items()
    }
    options["rft"] = bool(cfg.get("rft"))
    validate_options(options)
    return options
