"""The cache's building blocks: content fingerprints, atomic writes, and shards that refuse to be misused."""

from __future__ import annotations

import errno
import json
import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from rft_trl.shad.cache import CacheEntry, atomic_write, model_identity, weights_fingerprint
from rft_trl.shad.errors import ShadDataError
from rft_trl.shad.table import TokenTable


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=50,
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
