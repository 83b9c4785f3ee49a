"""SHAD + RFT for Axolotl: `plugins: [rft_trl.integrations.axolotl.RFTPlugin]` and `rft: true`.

`RFTPlugin` is imported on first access, so the Axolotl-free parts of this package (`checks`,
`args`) stay importable where Axolotl is not installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RFTPlugin"]


def __getattr__(name: str) -> Any:
    if name == "RFTPlugin":
        from rft_trl.integrations.axolotl.plugin import RFTPlugin

        return RFTPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
