"""The package's one default cache folder: tiny checkpoints, the demo's base models and SHAD labels."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RFT_TRL_CACHE"


def default_cache_dir() -> Path:
    """$RFT_TRL_CACHE, else $XDG_CACHE_HOME/rft-trl (~/.cache/rft-trl)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "rft-trl"
