"""The built wheel and sdist carry what an installed user and a contributor need, and
`rft-trl examples` finds the example configs in an installed wheel as in a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rft_trl.cli import main
from rft_trl.example_configs import example_config_files, example_configs_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """A wheel and an sdist built from a copy of the source tree (the build writes beside it)."""
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    _copy_tracked_files(src)
    out = work / "dist"
    build = (
        "import sys; from setuptools import build_meta as b; out = sys.argv[1]; "  # b edits argv
        "w = b.build_wheel(out); s = b.build_sdist(out); print('BUILT', w, s)"
    )
    result = subprocess.run(
        [sys.executable, "-c", build, str(out)], cwd=src, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wheel, sdist = result.stdout.split("BUILT ")[-1].split()
    return {"wheel": out / wheel, "sdist": out / sdist, "src": src}


def _copy_tracked_files(dest: Path) -> None:
    """The files git tracks (a checkout also holds venvs, demo output, caches); every file
    but venvs and caches where the tree is not a git checkout (an unpacked sdist)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listed.returncode == 0 and listed.stdout:
        for rel in filter(None, listed.stdout.split("\0")):
            if (ROOT / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
        return
    ignore = shutil.ignore_patterns(
        ".venv*", ".git", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "build", "dist"
    )
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def _source_modules(src: Path) -> list[str]:
    return sorted(str(p.relative_to(src)) for p in (src / "rft_trl").rglob("*.py"))


def test_wheel_holds_every_module_the_example_configs_and_the_licence(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    missing = [module for module in _source_modules(dists["src"]) if module not in names]
    assert not missing, f"not in the wheel (a subpackage missing from pyproject's list?): {missing}"
    for rel in example_config_files():
        assert f"rft_trl/plugin_configs/{rel}" in names
    for data in ("py.typed", "synthetic/chat_template.jinja", "integrations/axolotl/README.md"):
        assert f"rft_trl/{data}" in names
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(dists["wheel"]).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    entry_points = zipfile.ZipFile(dists["wheel"]).read(f"{info}/entry_points.txt").decode()
    for line in (
        "rft-trl = rft_trl.cli:main",
        "rft = rft_trl.integrations.axolotl:RFTPlugin",
        "rft-check = rft_trl.integrations.axolotl.cli:check_config_command",
    ):
        assert line in entry_points


def test_sdist_holds_what_the_test_suite_reads(dists):
    with tarfile.open(dists["sdist"]) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{top}/") for name in tar.getnames()}
    expected = [
        "LICENSE",
        "Makefile",
        "constraints-cpu.txt",
        "scripts/make_venv.sh",
        "tests/conftest.py",
        "tests/tiny_rows.py",
        "tests/axolotl/conftest.py",
        "benchmarks/evidence.py",
        "docs/configuration.md",
        "benchmarks/results/evidence-gpu-h256-harder-150-steps.jsonl",  # test_evidence_quick
        *(f"plugin_configs/{rel}" for rel in example_config_files()),
        *_source_modules(dists["src"]),
    ]
    assert [name for name in expected if name not in names] == []
    results = [name for name in names if name.startswith("benchmarks/results/")]
    assert results == ["benchmarks/results/evidence-gpu-h256-harder-150-steps.jsonl"]
    assert not any("__pycache__" in name for name in names)


def test_installed_wheel_finds_and_writes_its_example_configs(dists, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(dists["wheel"]).extractall(site)
    out = tmp_path / "work" / "plugin_configs"
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install's finder
    script = (
        "import sys, rft_trl.example_configs as e; from rft_trl.cli import main; "
        "print(e.example_configs_dir()); sys.exit(main(['examples', '--out', sys.argv[1]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=tmp_path,  # not the checkout, which `-c` would put first on sys.path
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == str(site / "rft_trl" / "plugin_configs")
    for rel in example_config_files():
        assert (out / rel).read_bytes() == (ROOT / "plugin_configs" / rel).read_bytes()


def test_checkout_finds_the_repository_configs():
    assert example_configs_dir() == ROOT / "plugin_configs"
    assert Path("trl/tiny_cpu.yaml") in example_config_files()
    assert Path("trl/llama3_training.jinja") in example_config_files()


def test_examples_never_replaces_a_changed_file_without_force(tmp_path, capsys):
    out = tmp_path / "plugin_configs"
    assert main(["examples", "--out", str(out)]) == 0
    edited = out / "trl" / "tiny_cpu.yaml"
    edited.write_text("max_steps: 3\n")
    (out / "trl" / "llama3_training.jinja").unlink()
    capsys.readouterr()

    assert main(["examples", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "trl/tiny_cpu.yaml" in error and "--force" in error
    assert edited.read_text() == "max_steps: 3\n"  # kept, and nothing else written either
    assert not (out / "trl" / "llama3_training.jinja").exists()

    assert main(["examples", "--out", str(out), "--force"]) == 0
    assert edited.read_bytes() == (ROOT / "plugin_configs/trl/tiny_cpu.yaml").read_bytes()
    assert (out / "trl" / "llama3_training.jinja").exists()


def test_examples_refuses_a_file_as_out(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["examples", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_examples_replace_a_link_never_the_file_it_points_at(tmp_path):
    outside = tmp_path / "mine.yaml"
    outside.write_text("my own config\n")
    out = tmp_path / "plugin_configs"
    (out / "trl").mkdir(parents=True)
    (out / "trl" / "tiny_cpu.yaml").symlink_to(outside)
    (out / "trl" / "llama3_training.jinja").symlink_to(tmp_path / "dangling")
    assert main(["examples", "--out", str(out)]) == 2  # a link is never taken as identical
    assert main(["examples", "--out", str(out), "--force"]) == 0
    assert outside.read_text() == "my own config\n" and not (tmp_path / "dangling").exists()
    link = out / "trl" / "tiny_cpu.yaml"
    assert not link.is_symlink()
    assert link.read_bytes() == (ROOT / "plugin_configs/trl/tiny_cpu.yaml").read_bytes()


def test_examples_write_nothing_when_a_file_stands_where_a_folder_goes(tmp_path, capsys):
    out = tmp_path / "plugin_configs"
    out.mkdir()
    (out / "trl").write_text("a file")
    assert main(["examples", "--out", str(out), "--force"]) == 2
    assert "where a folder must go" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["trl"]  # nothing else written


def test_examples_accept_an_out_folder_that_is_a_link(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    out = tmp_path / "plugin_configs"
    out.symlink_to(real, target_is_directory=True)
    assert main(["examples", "--out", str(out)]) == 0
    assert (real / "trl" / "tiny_cpu.yaml").is_file()
