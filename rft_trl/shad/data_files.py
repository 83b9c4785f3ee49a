"""Load a dataset named in a `trl sft` YAML: local files and folders (jsonl/json/parquet/csv/arrow) or the hub."""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict, load_dataset, load_from_disk

BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
    ".txt": "text",
}


def load_local_or_hub(name: str, config: str | None = None) -> DatasetDict:
    """A `DatasetDict` from a local file, a local folder (data files or `save_to_disk`), or a hub name."""
    path = Path(name).expanduser()
    if path.is_file():
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty. Fix: point `dataset_name` at the data file.")
        builder = BUILDERS.get("".join(path.suffixes[-1:]).lower())
        if builder is None:
            raise ValueError(
                f"Cannot tell the format of {path}: use one of {', '.join(sorted(BUILDERS))} files, a folder "
                "of them, or a folder written by `Dataset.save_to_disk`."
            )
        return load_dataset(builder, data_files=str(path))
    if path.is_dir():
        saved = ("dataset_dict.json", "state.json", "dataset_info.json")  # `save_to_disk` output
        if any((path / marker).exists() for marker in saved):
            loaded = load_from_disk(str(path))
            return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
        return load_dataset(str(path), name=config)
    # a path, not a hub id `owner/name`
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or path.suffix.lower() in BUILDERS:
        raise FileNotFoundError(
            f"Dataset path not found: {path}. Fix: correct `dataset_name` (a local file or "
            "folder, or a hub id `owner/name`)."
        )
    return load_dataset(name, name=config)
