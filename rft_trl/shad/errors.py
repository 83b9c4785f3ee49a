"""Errors SHAD raises for bad input; each message names the problem and the fix."""

from __future__ import annotations


class ShadDataError(ValueError):
    """The tokenized dataset cannot be labelled (no response tokens, too few samples, ...)."""


class ShadLabelsError(ValueError):
    """Labels given with `shad_labels_path` are missing, unreadable, or do not match the dataset."""


class ShadCacheError(RuntimeError):
    """The SHAD cache directory cannot be written (read-only, not a folder, disk full)."""
