"""The example configs of `plugin_configs/` (TRL, Axolotl, accelerate, a Llama 3 training chat
template): where they are, and copying them out for a user who installed rft-trl from a wheel."""

from __future__ import annotations

import filecmp
import shutil
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


def copy_example_configs(out: Path, *, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy every example file into `out` (same sub-folders); return (written, already identical).

    A file in `out` that differs from the bundled one is never replaced unless `overwrite`: then
    nothing at all is written, and `FileExistsError` names every such file.
    """
    root = example_configs_dir()
    files = example_config_files()
    differing = [
        rel
        for rel in files
        if (out / rel).exists()
        and not ((out / rel).is_file() and filecmp.cmp(root / rel, out / rel, shallow=False))
    ]
    if differing and not overwrite:
        raise FileExistsError(
            f"{len(differing)} file(s) in {out} differ from the bundled examples: "
            f"{', '.join(str(rel) for rel in differing)}. Fix: pass --force to replace them, or "
            "--out another folder."
        )
    written, unchanged = [], []
    for rel in files:
        target = out / rel
        if target.is_file() and filecmp.cmp(root / rel, target, shallow=False):
            unchanged.append(rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, target)
        written.append(rel)
    return written, unchanged
