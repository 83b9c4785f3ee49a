"""The example configs of `plugin_configs/` (TRL, Axolotl, accelerate, a Llama 3 training chat
template): where they are, and copying them out for a user who installed rft-trl from a wheel."""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import tempfile
from pathlib import Path

SUFFIXES = (".yaml", ".jinja")


def example_configs_dir() -> Path:
    """The bundled `plugin_configs/` folder.

    A wheel installs it inside the package (`rft_trl/plugin_configs`, mapped in pyproject.toml);
    a source checkout (an editable install) has it at the repository root.
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "plugin_configs", package.parent / "plugin_configs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"No example configs beside {package}: this install of rft-trl is incomplete. "
        'Fix: reinstall it (pip install --force-reinstall "rft-trl").'
    )


def example_config_files() -> list[Path]:
    """The example files, relative to `example_configs_dir()`, sorted."""
    root = example_configs_dir()
    return sorted(
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and path.suffix in SUFFIXES
    )


class ExampleTargetError(ValueError):
    """The output folder cannot take the example files (a file where a folder goes, a changed file)."""


def copy_example_configs(out: Path, *, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy every example file into `out` (same sub-folders); return (written, already identical).

    Every target is checked before anything is written: a file or link where a folder must go, or
    a folder where a file goes, is an error; a file (or link) that differs from the bundled one is
    replaced only with `overwrite`. Otherwise `ExampleTargetError` names them all and nothing is
    written. Files are written to a temporary name and renamed, which replaces a link itself,
    never the file it points at.
    """
    root = example_configs_dir()
    files = example_config_files()
    blocked, folders, differing, unchanged = [], [], [], []
    for rel in files:
        target = out / rel
        parents = [p for p in reversed(target.parents) if p == out or out in p.parents]
        bad = next(  # `out` itself may be a link to a folder; nothing below it may be
            (
                p
                for p in parents
                if (p != out and p.is_symlink()) or (p.exists() and not p.is_dir())
            ),
            None,
        )
        if bad is not None:
            blocked.append(bad)
        elif target.is_dir() and not target.is_symlink():
            folders.append(target)
        elif target.is_symlink() or target.exists():
            same = not target.is_symlink() and filecmp.cmp(root / rel, target, shallow=False)
            (unchanged if same else differing).append(rel)
    if blocked or folders:
        where = sorted({str(p) for p in blocked}) + [str(p) for p in folders]
        raise ExampleTargetError(
            f"{', '.join(where)}: a file or link where a folder must go, or a folder where a file "
            f"goes. Fix: move it away, or --out another folder."
        )
    if differing and not overwrite:
        raise ExampleTargetError(
            f"{len(differing)} file(s) in {out} differ from the bundled examples: "
            f"{', '.join(str(rel) for rel in differing)}. Fix: pass --force to replace them, or "
            "--out another folder."
        )
    written = []
    for rel in files:
        if rel in unchanged:
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(root / rel, tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        written.append(rel)
    return written, unchanged
