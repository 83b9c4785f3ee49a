"""SHAD's on-disk cache: the key, atomic writes, score shards and the tuned adapter, all in safe formats.

Layout of one entry, `<cache_dir>/shad/<key>/`:

- `key.json`: the key material (model, tokenizer, data, settings) the entry was made for.
- `adapter.safetensors` + `adapter.json`: the tuned SHAD adapter and its sidecar (the entry's
  key and the file's sha256), written right after tuning so an interrupted run never tunes twice.
- `scores/<split>/shard-NNNNNN.parquet` + `.json`: per-token losses of one shard of rows and a
  sidecar with the entry's key, the shard's row ids, the scoring plan's hash and the parquet
  file's sha256 (a file copied in from another entry is refused).
- `complete.json`: written last; the entry then holds every shard of every split.

Beside the entry, `<cache_dir>/shad/<key>.lock` is held (an OS file lock, released even when the
process dies) by the run computing the entry, so a second independent run with the same key waits
and then reuses the finished entry instead of writing into it at the same time.

Every file is written to a temporary name and renamed into place; temporary files a killed run
left behind are removed when the next run opens the entry. A file whose key, sha256, plan or rows
do not match is reported, deleted and recomputed, never used.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import xxhash

from rft_trl import dist
from rft_trl.shad.errors import ShadCacheError

try:  # POSIX; elsewhere independent runs must not share one cache entry at the same time
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 1.0
# flock on a filesystem without locks (Lustre without -o flock, NFS without lockd, ...)
_NO_LOCKS = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP}

FORMAT_VERSION = 2  # 2: sidecars name their entry; weights hashed in full
# Bumped whenever a change of the algorithm changes the scores, so old entries are not reused.
ALGORITHM_VERSION = 2  # 2: the shuffle-tune subset is whole optimizer steps
_HASH_CHUNK_BYTES = 1 << 28  # weights are copied to the host for hashing this much at a time


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hex sha256 of a JSON value in canonical form."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through `write(tmp_path)` and rename it into place (no torn files on interruption)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_json(path: Path, value: Any) -> None:
    """Write JSON atomically."""
    atomic_write(
        path, lambda tmp: tmp.write_text(json.dumps(value, indent=1, sort_keys=True, default=str))
    )


def read_json(path: Path) -> Any | None:
    """Parsed JSON, or None when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The key
# ---------------------------------------------------------------------------------------------


def _normalise_param_name(name: str) -> str | None:
    """The base-model name of a parameter, or None for adapter weights (SHAD scores without them)."""
    parts = name.split(".")
    if any(part.startswith("lora_") or part == "modules_to_save" for part in parts):
        return None
    return ".".join(p for p in parts if p not in ("base_layer", "original_module"))


def weights_fingerprint(model) -> str:
    """A hash of every byte of the base weights, with each tensor's name, dtype and shape.

    Every byte, because a checkpoint can differ from another in a few rows (a merged adapter's
    new token embeddings); xxh3-128 hashes tens of GB/s on one core, so an 8B model costs about
    a second plus the copy to the host. Adapter weights are skipped (SHAD scores with every
    adapter disabled), so the run's freshly initialised LoRA does not change the key.
    """
    from rft_trl.modeling import unwrap

    digest = xxhash.xxh3_128(b"rft-trl-weights-v2")
    named = []
    for name, param in unwrap(model).named_parameters():
        key = _normalise_param_name(name)
        if key is not None:
            named.append((key, param))
    for key, param in sorted(named, key=lambda item: item[0]):
        data = param.detach()
        if data.device.type == "meta":
            digest.update(f"{key}:meta:{tuple(data.shape)}".encode())
            continue
        digest.update(f"{key}:{data.dtype}:{tuple(data.shape)}".encode())
        flat = data.reshape(-1)
        step = max(1, _HASH_CHUNK_BYTES // max(1, flat.element_size()))
        for start in range(0, flat.numel(), step):
            piece = flat[start : start + step].contiguous().cpu()
            digest.update(piece.view(torch.uint8).numpy())
    return digest.hexdigest()


def model_identity(model, model_id: str | None) -> dict[str, Any]:
    """Name/revision when known, class, config hash and the weights fingerprint."""
    from rft_trl.modeling import unwrap

    base = unwrap(model)
    config = getattr(base, "config", None)
    config_dict = config.to_dict() if config is not None and hasattr(config, "to_dict") else {}
    for volatile in (
        "_name_or_path",
        "_commit_hash",
        "transformers_version",
        "_attn_implementation_autoset",
    ):
        config_dict.pop(volatile, None)
    return {
        "id": model_id or (getattr(config, "_name_or_path", None) or None),
        "revision": getattr(config, "_commit_hash", None),
        "class": type(base).__name__,
        "config": sha256_json(config_dict),
        "weights": weights_fingerprint(model),
    }


def runtime_identity(model) -> dict[str, Any]:
    """The attention kernel and library versions: each changes the scores' last digits, which
    can move a token across the threshold, so a change re-scores instead of mixing entries. (The
    device type is in each shard's plan, `score.scoring_plan`: it is known only when scoring.)"""
    from importlib.metadata import PackageNotFoundError, version

    from rft_trl.modeling import unwrap

    config = getattr(unwrap(model), "config", None)
    versions = {}
    for package in ("torch", "transformers", "peft"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {"attn_implementation": getattr(config, "_attn_implementation", None), **versions}


def tokenizer_identity(tokenizer) -> dict[str, Any] | None:
    """Hash of the vocabulary, special tokens and chat template (None without a tokenizer)."""
    if tokenizer is None:
        return None
    tok = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
    vocab = sorted(tok.get_vocab().items()) if hasattr(tok, "get_vocab") else []
    special = {
        "all": list(getattr(tok, "all_special_tokens", [])),
        "pad": getattr(tok, "pad_token_id", None),
        "eos": getattr(tok, "eos_token_id", None),
        "bos": getattr(tok, "bos_token_id", None),
    }
    return {
        "class": type(tok).__name__,
        "vocab": sha256_json(vocab),
        "special": sha256_json(special),
        "chat_template": sha256_json(getattr(tok, "chat_template", None)),
    }


def entry_key(material: dict[str, Any]) -> str:
    """The directory name of a cache entry: a hash of its key material."""
    return sha256_json({"format": FORMAT_VERSION, **material})[:32]


# ---------------------------------------------------------------------------------------------
# Entries, shards and the adapter file
# ---------------------------------------------------------------------------------------------


class CacheEntry:
    """One cache entry directory; every read validates, every write is atomic."""

    def __init__(self, root: Path, material: dict[str, Any], warn: Callable[[str], None]) -> None:
        self.material = material
        self.key = entry_key(material)
        self.path = Path(root) / "shad" / self.key
        self.lock_path = Path(root) / "shad" / f"{self.key}.lock"
        self.warn = warn
        self.locked = False  # True while `exclusive()` holds the entry's lock file

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the entry's lock file (main rank only) while this run computes the entry.

        Two independent runs that share a cache directory and a key would otherwise write the same
        shards at once and read each other's half-written files. The second one waits here, then
        finds the entry complete and reuses it. Rank 0 polls without blocking and every rank joins a
        short broadcast per poll, so the other ranks of a waiting job never sit in one long
        collective (which would hit the process group's timeout).
        """
        handle = None
        if dist.is_main() and fcntl is not None:
            with self.writable():
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(self.lock_path, "a+")  # noqa: SIM115 - closed in the finally below
        try:
            warned = False
            while True:
                locked = True if handle is None else self._try_lock(handle)
                if locked is None:  # the filesystem has no locks: go on without one
                    handle.close()
                    handle, locked = None, True
                if dist.broadcast(locked):
                    break
                if handle is not None and not warned:
                    handle.seek(0)
                    holder = handle.read().strip() or "an unknown process"
                    logger.warning(
                        f"SHAD cache entry {self.path} is being computed by another run ({holder}). "
                        "Waiting for it to finish; this run then reuses its labels. To run both at "
                        "once independently, give each its own `shad_cache_dir`."
                    )
                    warned = True
                time.sleep(LOCK_POLL_SECONDS)
            if handle is not None:  # this process holds the lock
                self.locked = True
                handle.seek(0)
                handle.truncate()
                started = datetime.datetime.now().isoformat(timespec="seconds")
                handle.write(f"pid {os.getpid()} on {os.uname().nodename}, since {started}")
                handle.flush()
            yield
        finally:
            self.locked = False
            if handle is not None:
                fcntl.flock(
                    handle, fcntl.LOCK_UN
                )  # a no-op if never taken; frees forked children too
                handle.close()

    def _try_lock(self, handle) -> bool | None:
        """True when locked, False while another process holds it, None where locks are unsupported."""
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as error:
            if error.errno not in _NO_LOCKS:
                raise
            logger.warning(
                f"The SHAD cache directory of {self.path} does not support file locks ({error}). "
                "Runs that share it must not compute the same entry at the same time: give each "
                "concurrent run its own `shad_cache_dir`."
            )
            return None

    @contextlib.contextmanager
    def writable(self) -> Iterator[None]:
        """Turn an OS error writing the cache (read-only, not a folder, disk full) into one that
        names `shad_cache_dir` and the fix."""
        try:
            yield
        except OSError as error:
            root = self.path.parent.parent
            raise ShadCacheError(
                f"The SHAD cache at {root} cannot be written ({error}). Fix: set `shad_cache_dir` "
                "(or RFT_TRL_CACHE) to a writable folder with free space, or label ahead of time "
                "with `rft-trl shad` and train with `shad_labels_path`."
            ) from error

    def prepare(self) -> None:
        """Create the entry, or wipe it if its `key.json` does not match this key (never reuse a
        mismatch); remove temporary files a killed run left (this run holds the entry's lock)."""
        with self.writable():
            self._prepare()

    def _prepare(self) -> None:
        key_file = self.path / "key.json"
        if self.path.exists():
            stored = read_json(key_file)
            if stored is not None and stored == json.loads(json.dumps(self.material, default=str)):
                if self.locked:  # else a concurrent run may be writing them right now
                    for leftover in self.path.rglob(".*.tmp"):  # from a killed `atomic_write`
                        with contextlib.suppress(FileNotFoundError):
                            leftover.unlink()
                return
            self.warn(
                f"SHAD cache entry {self.path} does not match this run (its key.json is "
                f"{'unreadable' if stored is None else 'different'}); discarding it and recomputing."
            )
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(key_file, self.material)

    # --- completion marker ---------------------------------------------------------------

    def complete(self) -> dict[str, Any] | None:
        """The completion record, or None while the entry is incomplete."""
        return read_json(self.path / "complete.json")

    def mark_complete(self, record: dict[str, Any]) -> None:
        """Write the completion record (last)."""
        with self.writable():
            atomic_write_json(self.path / "complete.json", record)

    def clear_complete(self) -> None:
        """Forget completion (a shard turned out bad)."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / "complete.json").unlink()

    # --- adapter ---------------------------------------------------------------------------

    @property
    def adapter_path(self) -> Path:
        return self.path / "adapter.safetensors"

    def save_adapter(self, tensors: dict[str, Any], info: dict[str, Any]) -> None:
        """Save the tuned adapter (safetensors) and its sidecar with the file's sha256."""
        from safetensors.torch import save_file

        with self.writable():
            atomic_write(self.adapter_path, lambda tmp: save_file(tensors, str(tmp)))
            atomic_write_json(
                self.path / "adapter.json",
                {**info, "entry": self.key, "sha256": sha256_file(self.adapter_path)},
            )

    def load_adapter(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(tensors, info) of a valid saved adapter, else None (a corrupt file is reported and removed)."""
        info = read_json(self.path / "adapter.json")
        if not self.adapter_path.exists():
            return None
        try:
            if info is None:
                raise ValueError("its adapter.json is missing or unreadable")
            if info.get("entry") != self.key:
                raise ValueError("its adapter.json belongs to another cache entry")
            if sha256_file(self.adapter_path) != info.get("sha256"):
                raise ValueError("sha256 mismatch")
            from safetensors.torch import load_file

            return load_file(str(self.adapter_path)), info
        except Exception as error:  # any unreadable file is treated the same way
            if dist.is_main():  # another rank reports it: main validated this file already
                self.warn(
                    f"SHAD cache: the saved adapter in {self.path} is corrupt ({error}); retuning."
                )
                self.drop_adapter()
            return None

    def drop_adapter(self) -> None:
        """Remove the adapter files."""
        for name in ("adapter.safetensors", "adapter.json"):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    # --- shards ----------------------------------------------------------------------------

    def drop_scores(self) -> None:
        """Remove every score shard (they belong to the adapter that made them)."""
        self.clear_complete()
        shutil.rmtree(self.path / "scores", ignore_errors=True)

    def shards(self, split: str) -> ShardStore:
        """The shard store of one split (`train`, `probe`, `eval-<name>`)."""
        return ShardStore(self.path / "scores" / split, self.key, self.warn, self.writable)


class ShardStore:
    """Per-token loss columns of shards of rows, one parquet file (+ JSON sidecar) per shard."""

    def __init__(
        self,
        directory: Path,
        entry: str,
        warn: Callable[[str], None],
        writable: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.directory = directory
        self.entry = entry
        self.warn = warn
        self.writable = writable

    def _paths(self, shard: int) -> tuple[Path, Path]:
        stem = self.directory / f"shard-{shard:06d}"
        return stem.with_suffix(".parquet"), stem.with_suffix(".json")

    def save(
        self, shard: int, plan: str, rows: list[int], columns: dict[str, list[np.ndarray]]
    ) -> None:
        """Write one shard atomically: the parquet file first, then the sidecar that validates it."""
        data, meta = self._paths(shard)
        arrays = {"row": pa.array(rows, type=pa.int64())}
        for name, values in columns.items():
            lengths = np.fromiter((len(v) for v in values), dtype=np.int32, count=len(values))
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            flat = np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32)
            arrays[name] = pa.ListArray.from_arrays(offsets, pa.array(flat, type=pa.float32()))
        table = pa.table(arrays)
        with self.writable():
            atomic_write(data, lambda tmp: pq.write_table(table, tmp))
            atomic_write_json(
                meta, {"entry": self.entry, "plan": plan, "rows": rows, "sha256": sha256_file(data)}
            )

    def load(
        self, shard: int, plan: str, rows: list[int], lengths: list[int], names: tuple[str, ...]
    ) -> dict[str, list[np.ndarray]] | None:
        """The shard's columns if its files exist and match `plan`/`rows`/`lengths`, else None.

        A present but bad shard (garbled, truncated, from another plan) is reported and deleted.
        """
        data, meta = self._paths(shard)
        if not meta.exists():  # never written, or killed between the parquet file and its sidecar
            with contextlib.suppress(FileNotFoundError):
                data.unlink()
            return None
        try:
            info = read_json(meta)
            if info is None:
                raise ValueError("unreadable sidecar")
            if info.get("entry") != self.entry:
                raise ValueError("its sidecar belongs to another cache entry")
            if info.get("plan") != plan or info.get("rows") != rows:
                raise ValueError("made for a different scoring plan or device")
            if sha256_file(data) != info.get("sha256"):
                raise ValueError("sha256 mismatch")
            table = pq.read_table(data)
            if table.column("row").to_pylist() != rows:
                raise ValueError("row ids differ")
            out: dict[str, list[np.ndarray]] = {}
            for name in names:
                column = table.column(name).combine_chunks()
                got = column.value_lengths().to_numpy(zero_copy_only=False).tolist()
                if got != list(lengths):
                    raise ValueError(f"column {name} has wrong row lengths")
                flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
                offsets = np.concatenate([[0], np.cumsum(got)])
                out[name] = [flat[offsets[i] : offsets[i + 1]] for i in range(len(rows))]
            return out
        except Exception as error:  # any unreadable shard is recomputed
            self.warn(f"SHAD cache: shard {data} is unusable ({error}); recomputing it.")
            for path in (data, meta):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return None
