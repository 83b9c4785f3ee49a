"""rft-trl: SHAD token labelling and reasoning-highlighted fine-tuning (RFT) for TRL and Axolotl.

The public API. Names are imported on first use (PEP 562), so `import rft_trl` and the CLI
stay fast and the core does not pull in TRL until a trainer is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "RFTConfig": "rft_trl.config",
    "RFTTrainer": "rft_trl.trainer",
    "TokenClassCollator": "rft_trl.collator",
    "rft_loss": "rft_trl.loss",
    "token_logprobs": "rft_trl.loss",
    "forward_token_logprobs": "rft_trl.modeling",
    "label_dataset": "rft_trl.shad",
    "ShadSettings": "rft_trl.shad",
    "OPTIONS": "rft_trl.options",
    "RFTConfigError": "rft_trl.options",
}

__all__ = [
    "OPTIONS",
    "RFTConfig",
    "RFTConfigError",
    "RFTTrainer",
    "ShadSettings",
    "TokenClassCollator",
    "__version__",
    "forward_token_logprobs",
    "label_dataset",
    "rft_loss",
    "token_logprobs",
]

if TYPE_CHECKING:
    from rft_trl.collator import TokenClassCollator
    from rft_trl.config import RFTConfig
    from rft_trl.loss import rft_loss, token_logprobs
    from rft_trl.modeling import forward_token_logprobs
    from rft_trl.options import OPTIONS, RFTConfigError
    from rft_trl.shad import ShadSettings, label_dataset
    from rft_trl.trainer import RFTTrainer


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    try:  # a submodule used as an attribute, e.g. `rft_trl.dist.shut_down()`
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'rft_trl' has no attribute {name!r}")
