"""The cache's building blocks: content fingerprints, atomic writes, and shards that refuse to be misused."""

from __future__ import annotations

import errno
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from rft_trl.shad.cache import (
    CacheEntry,
    atomic_write,
    model_identity,
    runtime_identity,
    weights_fingerprint,
)
from rft_trl.shad.errors import ShadCacheError, ShadDataError
from rft_trl.shad.score import scoring_plan
from rft_trl.shad.table import TokenTable


def tiny_llama(seed: int = 0, vocab_size: int = 50) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    return LlamaForCausalLM(config)


def test_weights_fingerprint_sees_any_checkpoint_change_but_not_adapters():
    model = tiny_llama()
    before = weights_fingerprint(model)
    assert weights_fingerprint(tiny_llama()) == before
    assert weights_fingerprint(tiny_llama(seed=1)) != before
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(1.001)  # a fine-tuned checkpoint, same name
    assert weights_fingerprint(model) != before
    # A freshly initialised LoRA (random A) does not change the key: SHAD scores without it.
    plain = tiny_llama()
    peft_model = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules="all-linear"))
    assert weights_fingerprint(peft_model) == weights_fingerprint(plain)
    ident = model_identity(peft_model, "org/name@rev")
    assert ident["id"] == "org/name@rev" and ident["class"] == "LlamaForCausalLM"


def test_token_fingerprint_depends_on_content_only():
    rows = {"input_ids": [[1, 2, 3], [4, 5]], "labels": [[-100, 2, 3], [-100, 5]]}
    a = TokenTable(Dataset.from_dict(rows))
    b = TokenTable(Dataset.from_dict({**rows, "extra": ["x", "y"]}))
    assert a.fingerprint == b.fingerprint
    shuffled = Dataset.from_dict(
        {"input_ids": [[9], *rows["input_ids"]], "labels": [[9], *rows["labels"]]}
    )
    assert (
        TokenTable(shuffled.select([1, 2])).fingerprint == a.fingerprint
    )  # indices mapping honoured
    changed = TokenTable(Dataset.from_dict({**rows, "labels": [[-100, -100, 3], [-100, 5]]}))
    assert changed.fingerprint != a.fingerprint
    assert a.response_counts.tolist() == [2, 1] and a.lengths.tolist() == [3, 2]


def test_token_table_rejects_untokenized_or_misaligned_data():
    with pytest.raises(ShadDataError, match="tokenize"):
        TokenTable(Dataset.from_dict({"text": ["a"]}))
    with pytest.raises(ShadDataError, match="same length"):
        TokenTable(Dataset.from_dict({"input_ids": [[1, 2]], "labels": [[1]]}))


def test_atomic_write_leaves_no_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "f.json"

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert list(tmp_path.iterdir()) == []


def test_shards_detect_corruption_and_plan_changes(tmp_path):
    warnings: list[str] = []
    entry = CacheEntry(tmp_path, {"k": 1}, warnings.append)
    entry.prepare()
    store = entry.shards("train")
    values = {"l_o": [np.array([0, 1.5], np.float32), np.array([0, 2, 3], np.float32)]}
    store.save(0, "plan-a", [4, 7], values)
    got = store.load(0, "plan-a", [4, 7], [2, 3], ("l_o",))
    assert [v.tolist() for v in got["l_o"]] == [[0, 1.5], [0, 2, 3]]
    assert store.load(0, "plan-b", [4, 7], [2, 3], ("l_o",)) is None  # another plan: dropped
    assert "different scoring plan" in warnings[-1]
    store.save(0, "plan-a", [4, 7], values)
    data = store.directory / "shard-000000.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert store.load(0, "plan-a", [4, 7], [2, 3], ("l_o",)) is None
    assert "sha256" in warnings[-1] and not data.exists()
    store.save(0, "plan-a", [4, 7], values)
    data.write_bytes(data.read_bytes()[:20])  # truncated
    assert store.load(0, "plan-a", [4, 7], [2, 3], ("l_o",)) is None


def test_entry_with_a_different_key_file_is_discarded(tmp_path):
    warnings: list[str] = []
    entry = CacheEntry(tmp_path, {"k": 1}, warnings.append)
    entry.prepare()
    (entry.path / "marker").write_text("x")
    (entry.path / "key.json").write_text(json.dumps({"k": 2}))
    entry.prepare()
    assert not (entry.path / "marker").exists() and "does not match" in warnings[0]
    entry.save_adapter({"w": torch.ones(2)}, {"steps": 1})
    assert torch.equal(entry.load_adapter()[0]["w"], torch.ones(2))
    entry.adapter_path.write_bytes(b"garbage")
    assert entry.load_adapter() is None and "corrupt" in warnings[-1]


def test_a_cache_dir_without_file_locks_is_used_unlocked_with_a_warning(
    tmp_path, monkeypatch, caplog
):
    """Lustre without `-o flock` or NFS without lockd: labelling still runs, and says why it is unlocked."""
    fcntl = pytest.importorskip("fcntl")

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    entry = CacheEntry(tmp_path, {"k": 1}, lambda message: None)
    ran = []
    with caplog.at_level(logging.WARNING, logger="rft_trl.shad.cache"), entry.exclusive():
        ran.append(True)
    assert ran and "does not support file locks" in caplog.text and "shad_cache_dir" in caplog.text


def test_the_lock_is_released_when_the_labelling_fails(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    entry = CacheEntry(tmp_path, {"k": 1}, lambda message: None)
    with pytest.raises(RuntimeError, match="boom"), entry.exclusive():
        assert entry.lock_path.read_text().startswith("pid ")
        raise RuntimeError("boom")
    with open(entry.lock_path) as handle:
        fcntl.flock(
            handle, fcntl.LOCK_EX | fcntl.LOCK_NB
        )  # free again: raises BlockingIOError if not


def test_weights_fingerprint_sees_one_changed_element_anywhere():
    """Every byte is hashed: one entry of a large embedding (a merged adapter's new token rows)
    changes the key. A hash of strided samples missed exactly this (odd flat index, 9,600
    elements: every second one sampled)."""
    model = tiny_llama(vocab_size=600)
    before = weights_fingerprint(model)
    weight = model.model.embed_tokens.weight
    original = weight[0, 1].item()
    with torch.no_grad():
        weight[0, 1] = original + 1.0
    assert weights_fingerprint(model) != before
    with torch.no_grad():
        weight[0, 1] = original
    assert weights_fingerprint(model) == before


def test_shards_are_planned_per_device_type():
    """A run resumed on another device type re-scores its shards instead of mixing them."""
    cpu = tiny_llama()
    assert scoring_plan("p", cpu) == "p@cpu"
    assert scoring_plan("p", cpu.to("meta")) == "p@meta"
    assert "device" not in runtime_identity(tiny_llama())  # known only when scoring


def _two_entries(tmp_path):
    warnings: list[str] = []
    first = CacheEntry(tmp_path, {"k": 1}, warnings.append)
    other = CacheEntry(tmp_path, {"k": 2}, warnings.append)
    for entry in (first, other):
        entry.prepare()
    return first, other, warnings


def test_a_shard_copied_from_another_entry_is_refused(tmp_path):
    """Same plan and rows (another seed, or data edited without changing lengths), other scores."""
    first, other, warnings = _two_entries(tmp_path)
    values = {"l_o": [np.array([0, 1.5], np.float32)]}
    other.shards("train").save(0, "plan", [3], {"l_o": [np.array([0, 9.0], np.float32)]})
    first_store = first.shards("train")
    first_store.directory.mkdir(parents=True)
    for suffix in (".parquet", ".json"):
        name = f"shard-000000{suffix}"
        shutil.copy(other.shards("train").directory / name, first_store.directory / name)
    assert first_store.load(0, "plan", [3], [2], ("l_o",)) is None
    assert "another cache entry" in warnings[-1]
    first_store.save(0, "plan", [3], values)
    assert first_store.load(0, "plan", [3], [2], ("l_o",))["l_o"][0].tolist() == [0, 1.5]


def test_an_adapter_copied_from_another_entry_or_without_its_sidecar_is_refused(tmp_path):
    first, other, warnings = _two_entries(tmp_path)
    other.save_adapter({"w": torch.zeros(2)}, {"steps": 1})
    for name in ("adapter.safetensors", "adapter.json"):
        shutil.copy(other.path / name, first.path / name)
    assert first.load_adapter() is None and "another cache entry" in warnings[-1]
    first.save_adapter({"w": torch.ones(2)}, {"steps": 1})
    (first.path / "adapter.json").unlink()
    assert first.load_adapter() is None and "missing" in warnings[-1]
    assert not first.adapter_path.exists()


def test_a_run_killed_mid_write_leaves_nothing_that_is_used_or_kept(tmp_path):
    """SIGKILL between a shard's parquet file and its sidecar, or inside `atomic_write`: the next
    run (which holds the entry's lock) drops both quietly instead of calling them corrupt."""
    warnings: list[str] = []
    entry = CacheEntry(tmp_path, {"k": 1}, warnings.append)
    entry.prepare()
    store = entry.shards("train")
    store.save(0, "plan", [3], {"l_o": [np.array([0, 1.5], np.float32)]})
    (store.directory / "shard-000000.json").unlink()  # the sidecar was never written
    leftover = store.directory / ".shard-000001.parquet.abc123.tmp"
    leftover.write_bytes(b"half")
    entry.prepare()
    assert leftover.exists()  # without the entry's lock another run may be writing it
    with entry.exclusive():
        entry.prepare()
    assert not leftover.exists()
    assert store.load(0, "plan", [3], [2], ("l_o",)) is None
    assert warnings == [] and not (store.directory / "shard-000000.parquet").exists()


def test_an_unwritable_cache_dir_is_named_with_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    entry = CacheEntry(blocker / "cache", {"k": 1}, lambda message: None)
    with pytest.raises(ShadCacheError, match="shad_cache_dir") as error, entry.exclusive():
        entry.prepare()
    assert str(blocker / "cache") in str(error.value)


# One labelled row, as `rft-trl shad` stores it.
_LABELLED_ROW = {
    "input_ids": [[5, 6, 7]],
    "labels": [[-100, 6, 7]],
    "token_class": [[-100, 1, 0]],
    "shad_l_o": [[0.0, 1.0, 1.0]],
    "shad_l_s": [[0.0, 2.0, 0.5]],
}


def _save_repeatedly(target: str, barrier, rounds: int) -> None:
    from rft_trl.shad.labels_io import save_labels

    data = Dataset.from_dict(_LABELLED_ROW)
    for _ in range(rounds):
        barrier.wait(timeout=30)  # a partner that failed breaks it instead of hanging
        save_labels(data, target, metadata={"threshold": 0.0})


def test_two_runs_saving_the_same_labels_dir_at_once_both_succeed(tmp_path):
    """Two runs sharing an output_dir save `_shad_labels` at the same moment: a rename that loses
    the race is retried (it raised `Directory not empty` or `FileNotFoundError` in about 1 save
    in 5), and a complete labels directory is left in place."""
    import multiprocessing

    from rft_trl.shad.labels_io import LabelsDir

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    target = str(tmp_path / "_shad_labels")
    workers = [
        context.Process(target=_save_repeatedly, args=(target, barrier, 60)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    LabelsDir(target)  # complete and valid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_shad_labels"]  # no staging left


def test_a_failed_swap_puts_the_previous_labels_back(tmp_path, monkeypatch):
    """An I/O error (EIO, ESTALE on NFS) renaming the new labels into place must not lose the
    labels that were there: they are moved aside first, so they are moved back."""
    from pathlib import Path

    from rft_trl.shad.labels_io import LabelsDir, load_labels, save_labels

    rows = _LABELLED_ROW
    target = tmp_path / "labels"
    save_labels(Dataset.from_dict(rows), target, metadata={"threshold": 0.0})
    rename = Path.rename

    def failing(self, destination):
        if (
            Path(destination) == target
            and self.name.startswith(".labels.")
            and ".old." not in self.name
        ):
            raise OSError(errno.EIO, "Input/output error")
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", failing)
    changed = {**rows, "token_class": [[-100, 0, 0]]}
    with pytest.raises(OSError, match="Input/output"):
        save_labels(Dataset.from_dict(changed), target, metadata={"threshold": 0.0})
    monkeypatch.undo()
    LabelsDir(target)
    assert load_labels(target)["token_class"] == [[-100, 1, 0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels"]
