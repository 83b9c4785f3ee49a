"""Labels directories written by `rft-trl shad` (and `save_labels`): Parquet per split + metadata JSON.

Layout of `DIR/`:

- `metadata.json`: format name and version, the threshold, settings, the SHAD report and, per
  split, its file, row count, token fingerprint (sha256 of input_ids + labels) and file sha256.
- `<split>.parquet`: the labelled rows (`input_ids`, `labels`, `token_class`, `shad_l_o`,
  `shad_l_s` and any other columns the dataset had), `train` and optionally `eval-<name>`.
- `tokenizer/` (optional): the tokenizer's JSON files, so `rft-trl inspect` can show tokens.

The directory is written under a temporary name and renamed into place: a failed write leaves
nothing behind. Loading checks every file's sha256, and a dataset is matched by row count and
token fingerprint, never by file name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datasets import Dataset
from datasets.table import InMemoryTable

from rft_trl.shad.cache import read_json, sha256_file
from rft_trl.shad.classify import COLUMNS, L_O, L_S, TOKEN_CLASS, reclassify
from rft_trl.shad.errors import ShadLabelsError
from rft_trl.shad.table import TokenTable

FORMAT = "rft-trl-shad-labels"
VERSION = 1
TRAIN = "train"
# The default labels folder inside a run's output_dir. The leading `_` keeps the labelled
# training rows out of `Trainer.push_to_hub`, which uploads output_dir but ignores `_*`.
LABELS_DIR_NAME = "_shad_labels"


def check_labels_target(path: str | Path) -> None:
    """Raise unless `path` can receive a labels directory: new, empty, or earlier labels."""
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ShadLabelsError(
            f"{target} is a file, not a directory. Fix: choose another --output directory."
        )
    if target.exists() and not (target / "metadata.json").exists() and any(target.iterdir()):
        raise ShadLabelsError(
            f"{target} exists and is not a labels directory; refusing to overwrite it. "
            "Fix: choose an empty or new --output directory."
        )


def save_labels(
    dataset: Dataset,
    path: str | Path,
    *,
    eval_datasets: dict[str, Dataset] | None = None,
    tokenizer=None,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a labels directory (see the module docstring) atomically; returns its path."""
    target = Path(path).expanduser().resolve()
    check_labels_target(target)
    if target.exists() and not overwrite:
        raise ShadLabelsError(
            f"{target} already exists. Fix: remove it or choose another directory."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        splits = {
            TRAIN: dataset,
            **{f"eval-{name}": ds for name, ds in (eval_datasets or {}).items()},
        }
        records = {}
        for split, data in splits.items():
            missing = [c for c in COLUMNS if c not in data.column_names]
            if missing:
                raise ShadLabelsError(
                    f"Split {split!r} has no SHAD columns {missing}; label it first."
                )
            file = staging / f"{split}.parquet"
            data.to_parquet(str(file))
            records[split] = {
                "file": file.name,
                "rows": len(data),
                "fingerprint": TokenTable(data, split).fingerprint,
                "sha256": sha256_file(file),
            }
        if tokenizer is not None:
            tokenizer.save_pretrained(str(staging / "tokenizer"))
        meta = {"format": FORMAT, "version": VERSION, "splits": records, **(metadata or {})}
        (staging / "metadata.json").write_text(
            json.dumps(meta, indent=1, sort_keys=True, default=str)
        )
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


_SWAP_TRIES = 20


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`, replacing the labels there.

    Another run may save the same target at the same moment (two runs sharing an output_dir): a
    rename that loses that race (the target vanished, or appeared) is retried, so one complete
    labels directory always ends up in place and neither run fails.
    """
    replaced: list[Path] = []
    try:
        for _ in range(_SWAP_TRIES):
            try:
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                    old.rmdir()
                    target.rename(old)
                    replaced.append(old)
                staging.rename(target)
                break
            except FileNotFoundError:
                continue  # another run moved the target away first
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # another run put its labels in place first: replace them on the next try
        else:
            raise ShadLabelsError(
                f"Other runs kept replacing {target} while these labels were being saved. Fix: "
                "give each concurrent run its own output directory."
            )
    except BaseException:
        if replaced and not target.exists():  # put the previous labels back, never lose them
            with contextlib.suppress(OSError):
                replaced.pop().rename(target)
        raise
    finally:
        for old in replaced:
            shutil.rmtree(old, ignore_errors=True)


class LabelsDir:
    """A labels directory, opened and checked (format, version); splits are read on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ShadLabelsError(
                f"SHAD labels not found: {self.path} does not exist. Fix: write them with "
                f"`rft-trl shad --config CONFIG.yaml --output {self.path}` (with Axolotl: point at "
                f"`<output_dir>/{LABELS_DIR_NAME}` of an earlier run), or unset `shad_labels_path` "
                "to run SHAD before training."
            )
        meta = read_json(self.path / "metadata.json")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ShadLabelsError(
                f"{self.path} is not a labels directory written by `rft-trl shad` (no valid metadata.json). "
                "Fix: point `shad_labels_path` at the --output directory of `rft-trl shad` (with "
                f"Axolotl: at `<output_dir>/{LABELS_DIR_NAME}` of an earlier run)."
            )
        if meta.get("version") != VERSION:
            raise ShadLabelsError(
                f"{self.path} has labels format version {meta.get('version')}; this rft-trl reads version "
                f"{VERSION}. Fix: re-run `rft-trl shad` with this version."
            )
        self.metadata = meta
        self.splits: dict[str, dict[str, Any]] = meta["splits"]

    @property
    def tokenizer_path(self) -> Path | None:
        """The saved tokenizer directory, if any."""
        path = self.path / "tokenizer"
        return path if path.is_dir() else None

    def read(self, split: str = TRAIN) -> Dataset:
        """The stored rows of `split`, after checking the file's sha256."""
        record = self.splits.get(split)
        if record is None:
            raise ShadLabelsError(
                f"{self.path} has no split {split!r}; it has {sorted(self.splits)}. Fix: pass one "
                "of those, or re-run `rft-trl shad` with that split in its config."
            )
        file = self.path / record["file"]
        if not file.exists() or sha256_file(file) != record["sha256"]:
            raise ShadLabelsError(
                f"{file} is missing or corrupt (its sha256 does not match metadata.json). "
                "Fix: re-run `rft-trl shad` to rewrite the labels."
            )
        return Dataset(InMemoryTable(pq.read_table(file)))

    def match(self, dataset: Dataset, preferred: str = TRAIN) -> str:
        """The split whose rows are exactly `dataset`'s tokens; a clear error when none is."""
        table = TokenTable(dataset, "given")
        candidates = [preferred, *sorted(s for s in self.splits if s != preferred)]
        for split in candidates:
            record = self.splits.get(split)
            if (
                record
                and record["rows"] == table.num_rows
                and record["fingerprint"] == table.fingerprint
            ):
                return split
        record = self.splits.get(preferred) or next(iter(self.splits.values()))
        if record["rows"] != table.num_rows:
            problem = (
                f"they were made for {record['rows']} rows and this dataset has {table.num_rows}"
            )
        else:
            problem = (
                "the row count matches but the tokens differ (the data, tokenizer, chat template or "
                "max_length changed)"
            )
        raise ShadLabelsError(
            f"The SHAD labels in {self.path} do not match this dataset: {problem}. Fix: re-run "
            "`rft-trl shad` with the same config as training (same data, model tokenizer and max_length; "
            "with Axolotl, reuse the labels of a run with the same dataset and sequence_len), "
            "or unset `shad_labels_path` to label during training. Labels made in Python must be "
            "made on the rows the trainer prepares (it drops rows left without response tokens): "
            "label `trainer.train_dataset`, or reuse a run's `<output_dir>/_shad_labels`."
        )


def save_result(
    result,
    path: str | Path,
    *,
    settings,
    tokenizer,
    model_id: str | None,
    max_length: int | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a `ShadResult` (train + eval splits) with the standard metadata; returns the path."""
    metadata = {
        "threshold": settings.threshold,
        "settings": settings.to_options(),
        "model": model_id,
        "max_length": max_length,
        "report": result.report.to_dict(),
        **(extra or {}),
    }
    return save_labels(
        result.dataset,
        path,
        eval_datasets=result.eval_datasets,
        tokenizer=tokenizer,
        metadata=metadata,
    )


def load_labels(
    path: str | Path,
    dataset: Dataset | None = None,
    *,
    threshold: float | None = None,
    split: str = TRAIN,
) -> Dataset:
    """Labels from `path`: the stored rows, or `dataset` with the stored SHAD columns attached.

    With `dataset`, the labels must match it (row count and token fingerprint) or
    `ShadLabelsError` is raised. With `threshold`, `token_class` is recomputed from the stored
    losses.
    """
    labels = LabelsDir(path)
    if dataset is None:
        stored = labels.read(split)
    else:
        stored_split = labels.match(dataset, preferred=split)
        stored = labels.read(stored_split)
        base = dataset.remove_columns([c for c in COLUMNS if c in dataset.column_names])
        for column in (TOKEN_CLASS, L_O, L_S):
            # the stored chunks as they are: one combined list array would overflow its int32
            # offsets past 2**31 tokens
            base = base.add_column(
                column, stored.data.column(column), feature=stored.features[column]
            )
        stored = base
    stored_threshold = labels.metadata.get("threshold")
    if threshold is not None and threshold != stored_threshold:
        stored = reclassify(stored, threshold)
    return stored
