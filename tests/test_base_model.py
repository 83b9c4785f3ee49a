"""The demo's base model: same-world pretraining text without agent templates, and a recipe-keyed, self-healing cache."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from rft_trl.demo import base_model
from rft_trl.demo.base_model import (
    META_FILE,
    WEIGHTS_FILE,
    BaseRecipe,
    base_path,
    build_tokenizer,
    cache_problem,
    encode,
    get_base,
    pretraining_blocks,
    recipe_items,
)
from rft_trl.demo.data import make_data
from rft_trl.synthetic import ToolCall
from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.pretrain_text import (
    ALL_FORMS,
    BASIC_FORMS,
    CALL_FORMS,
    FORBIDDEN,
    SLOT_FORMS,
    TextDocument,
    check_document,
    pretraining_items,
    render_call,
)

# A base small enough to build in a few seconds: the cache logic does not depend on its size.
TINY = BaseRecipe(
    vocab_size=300,
    tokenizer_samples=40,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    pretrain_steps=2,
    batch_size=2,
    block_size=32,
    warmup_steps=1,
)


def test_pretraining_text_never_contains_an_agent_template():
    items = list(pretraining_items(200, seed=3, chat_rate=0.5, forms=ALL_FORMS))
    texts = [
        item.text if isinstance(item, TextDocument) else "\n".join(m["content"] for m in item)
        for item in items
    ]
    assert any(isinstance(item, list) for item in items) and any(
        isinstance(item, TextDocument) for item in items
    )
    for text in texts:
        for marker in FORBIDDEN:
            assert marker not in text
    with pytest.raises(ValueError, match="Thought:"):
        check_document("Thought: I should call get_weather")


def test_every_call_form_carries_the_values():
    call = ToolCall("get_weather", {"city": "New York", "days": 3})
    for form in CALL_FORMS:
        text = render_call(call, form)
        assert "get_weather" in text and "New York" in text and "3" in text
    with pytest.raises(ValueError, match="form="):
        render_call(call, "yaml")


def test_slot_forms_put_the_tool_and_arguments_in_named_slots():
    call = ToolCall("get_weather", {"city": "New York", "days": 3})
    assert render_call(call, "labelled", ("Tool", "Args")) == (
        'Tool: get_weather\nArgs: {"city": "New York", "days": 3}'
    )
    assert json.loads(render_call(call, "keyed", ("fn", "params"))) == {
        "fn": "get_weather",
        "params": {"city": "New York", "days": 3},
    }
    with pytest.raises(ValueError, match="slot names"):
        render_call(call, "keyed")


def test_slot_names_vary_between_documents_and_never_match_the_agent_templates():
    slot_lines = [
        line
        for item in pretraining_items(300, seed=0, forms=SLOT_FORMS)
        if isinstance(item, TextDocument)
        for line in item.answer.splitlines()
    ]
    tools = "|".join(default_world().tool_names)
    labels = {m[1] for line in slot_lines if (m := re.fullmatch(rf"(\w+): ({tools})", line))}
    keys = {m[1] for line in slot_lines if (m := re.match(rf'{{"(\w+)": "({tools})"', line))}
    assert len(labels) >= 8 and len(keys) >= 6
    assert not {"Action", "Action Input", "Thought"} & labels and "name" not in keys


def test_spoken_rate_says_some_requests_in_words_and_changes_nothing_else():
    kwargs = {"chat_rate": 0.3, "echo_rate": 0.0}
    plain = list(pretraining_items(300, seed=2, **kwargs))
    assert list(pretraining_items(300, seed=2, spoken_rate=0.0, **kwargs)) == plain
    half = list(pretraining_items(300, seed=2, spoken_rate=0.5, **kwargs))
    every = list(pretraining_items(300, seed=2, spoken_rate=1.0, **kwargs))
    months = re.compile(
        r"(January|February|March|April|May|June|July|August|September|October|"
        r"November|December) \d{1,2}, \d{4}"
    )
    spoken_words = {*(m.lower() for m in months.pattern[1:].split(")")[0].split("|")), "am", "pm"}
    spoken_words |= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"}
    spoken_words |= {"nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen"}
    spoken_words |= {"sixteen", "seventeen", "eighteen", "nineteen", "twenty"}
    n_said = 0
    for a, b, c in zip(plain, half, every, strict=True):
        assert b in (a, c)  # each document is either the plain one or the spoken one
        if isinstance(a, list):  # chat: only the user turn may differ
            assert [m for m in a if m["role"] != "user"] == [m for m in c if m["role"] != "user"]
            request, said = a[1]["content"], c[1]["content"]
        else:  # plain text: the calls, results and summaries after the request are the same
            assert a.answer == c.answer
            request, said = a.context, c.context
        if request != said:
            n_said += 1
            # it says a value in words, and every word it gained is such a word
            words, before = (
                set(re.findall(r"[a-z]+", said.lower())),
                re.findall(r"[a-z]+", request.lower()),
            )
            assert words & spoken_words and words - set(before) <= spoken_words
            assert not months.search(request)
    assert 50 < n_said < 300
    assert any(months.search(str(c)) for c in every) and not any(
        months.search(str(a)) for a in plain
    )
    n_half = sum(a != b for a, b in zip(plain, half, strict=True))
    assert 0.3 * n_said < n_half < 0.7 * n_said
    # chunks give the same documents as one stream (the choice is keyed on the document's index)
    assert list(pretraining_items(20, seed=2, spoken_rate=0.5, offset=280, **kwargs)) == half[280:]
    # the base's stream (tokenizer and pretraining) is the spoken one when its recipe asks
    assert list(recipe_items(replace(TINY, spoken_rate=1.0, chat_rate=0.0), 40)) == list(
        pretraining_items(
            40,
            seed=TINY.seed,
            spoken_rate=1.0,
            forms=TINY.call_forms,
            schema_rate=TINY.schema_rate,
            echo_rate=TINY.echo_rate,
        )
    )
    assert list(recipe_items(replace(TINY, spoken_rate=1.0), 40)) != list(recipe_items(TINY, 40))
    with pytest.raises(ValueError, match=r"spoken_rate=1.5 is not a probability"):
        next(pretraining_items(3, seed=2, spoken_rate=1.5))
    with pytest.raises(ValueError, match=r"spoken_rate=1.5 is a share of documents"):
        replace(TINY, spoken_rate=1.5)  # refused before any build starts
    with pytest.raises(ValueError, match=r"echo_rate=True is a share of documents"):
        replace(TINY, echo_rate=True)


def test_pretraining_items_are_deterministic_and_prefix_stable():
    first = list(pretraining_items(30, seed=1, chat_rate=0.5))
    assert first == list(pretraining_items(30, seed=1, chat_rate=0.5))
    assert list(pretraining_items(10, seed=1, chat_rate=0.5)) == first[:10]
    assert first != list(pretraining_items(30, seed=2, chat_rate=0.5))


def test_every_response_token_is_one_the_base_was_pretrained_on():
    # LoRA cannot train embeddings, so a response token the base never saw would stay random.
    recipe = replace(
        BaseRecipe(), vocab_size=600, tokenizer_samples=200, pretrain_steps=60, batch_size=8
    )
    tokenizer = build_tokenizer(recipe)
    inputs, _ = pretraining_blocks(tokenizer, recipe)
    seen = set(inputs.flatten().tolist())
    splits = make_data(tokenizer, 60, 1, seed=5)
    response = {
        t
        for ids, labels in zip(splits.train["input_ids"], splits.train["labels"], strict=True)
        for t, label in zip(ids, labels, strict=True)
        if label != -100
    }
    assert response - seen == set()
    # The old build (tokenizer also trained on agent text) leaves template tokens unseen.
    old = build_tokenizer(replace(recipe, tokenizer_sees_agent_text=True))
    old_seen = set(pretraining_blocks(old, recipe)[0].flatten().tolist())
    assert "Thought" in old.get_vocab() and old.convert_tokens_to_ids("Thought") not in old_seen


def test_pretraining_blocks_are_the_document_stream_in_order_for_any_worker_count(monkeypatch):
    # Chunks are encoded by offset (in parallel for a long stream); the blocks must be the first
    # documents in order, as one pass over them gives, whatever the number of processes. Small
    # chunks make the stream span many, more than the 2 x workers first submitted, so the pool's
    # in-order refill runs too (forked workers inherit the patched size).
    monkeypatch.setattr(base_model, "_CHUNK_DOCS", 40)
    recipe = replace(
        BaseRecipe(), vocab_size=600, tokenizer_samples=200, pretrain_steps=40, batch_size=4
    )
    tokenizer = build_tokenizer(recipe)
    ids: list[int] = []
    labels: list[int] = []
    documents = 0
    size = recipe.pretrain_steps * recipe.batch_size * recipe.block_size
    for item in recipe_items(recipe, 2000):
        item_ids, item_labels = encode(tokenizer, item, recipe.answer_only_loss)
        ids += item_ids
        labels += item_labels
        documents += 1
        if len(ids) >= size:
            break
    assert documents > 40 * 2 * 3  # more chunks than three workers submit first
    expected = (torch.tensor(ids[:size]).view(-1, 512), torch.tensor(labels[:size]).view(-1, 512))
    for workers in (1, 3):
        blocks = base_model.pretraining_blocks(tokenizer, recipe, workers=workers)
        assert all(torch.equal(a, b) for a, b in zip(blocks, expected, strict=True))
    assert list(recipe_items(recipe, 5, offset=1000)) == list(recipe_items(recipe, 1005))[1000:]


def test_generation_workers_follow_the_callers_threads(monkeypatch):
    # a short stream is encoded inline; a long one by one process per torch thread (Linux only)
    assert base_model.generation_workers(1000) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert base_model.generation_workers(10**8) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    if sys.platform.startswith("linux"):
        assert base_model.generation_workers(10**8) == min(16, len(os.sched_getaffinity(0)))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert base_model.generation_workers(10**8) == 1


def test_fingerprint_follows_the_text_generators(monkeypatch):
    # An edited phrasing line must give a new base even if it is one choice among several.
    from rft_trl.synthetic import pretrain_text

    before = TINY.fingerprint()
    systems = pretrain_text._CHAT_SYSTEMS
    for i in range(len(systems)):
        edited = (*systems[:i], systems[i] + " Thanks.", *systems[i + 1 :])
        monkeypatch.setattr(pretrain_text, "_CHAT_SYSTEMS", edited)
        assert TINY.fingerprint() != before, f"editing chat system line {i} kept the fingerprint"


def test_fingerprint_follows_the_recipe():
    assert TINY.fingerprint() == replace(TINY).fingerprint()
    assert TINY.fingerprint() != replace(TINY, pretrain_steps=3).fingerprint()
    assert TINY.fingerprint() != replace(TINY, call_forms=BASIC_FORMS).fingerprint()
    assert TINY.fingerprint() != replace(TINY, call_forms=ALL_FORMS).fingerprint()
    # spoken_rate came later: a recipe without it keeps its fingerprint (the payload it had before,
    # so its cached base keeps its name), one with it gets a new one
    old_recipe = {k: v for k, v in asdict(TINY).items() if k != "spoken_rate"}
    old_text = base_model._generator_fingerprint(tuple(dict.fromkeys(CALL_FORMS + TINY.call_forms)))
    old_payload = {"recipe": old_recipe, "build": base_model.BUILD_VERSION, "text": old_text}
    old = hashlib.sha256(json.dumps(old_payload, sort_keys=True).encode()).hexdigest()[:16]
    assert TINY.fingerprint() == old
    spoken = replace(TINY, spoken_rate=0.3).fingerprint()
    assert spoken not in (TINY.fingerprint(), replace(TINY, spoken_rate=0.5).fingerprint())


def test_fingerprint_of_a_slot_recipe_follows_the_slot_pools(monkeypatch):
    # The slot forms' text is fingerprinted only for recipes that use them.
    from rft_trl.synthetic import pretrain_text

    slot, classic = replace(TINY, call_forms=ALL_FORMS), TINY.fingerprint()
    before = slot.fingerprint()
    monkeypatch.setattr(pretrain_text, "_NAME_KEYS", ("tool", "fn"))
    assert slot.fingerprint() != before and TINY.fingerprint() == classic


def test_cache_is_reused_rebuilt_on_recipe_change_and_healed_when_corrupt(
    tmp_path, single_thread_torch, benchmark_script
):
    messages: list[str] = []
    first = get_base(TINY, tmp_path, progress=False, log=messages.append)
    assert first.built and cache_problem(first.path, TINY.fingerprint()) is None
    meta = json.loads((first.path / META_FILE).read_text())
    assert meta["recipe"]["pretrain_steps"] == 2 and len(meta["pretrain_loss"]) == 2

    again = get_base(TINY, tmp_path, progress=False, log=messages.append)
    assert not again.built and again.path == first.path
    assert "cached" in messages[-1]

    changed = replace(TINY, pretrain_steps=3)
    rebuilt = get_base(changed, tmp_path, progress=False, log=messages.append)
    assert rebuilt.built and rebuilt.path != first.path
    assert len(rebuilt.pretrain_loss) == 3

    weights = first.path / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)
    assert "checksum" in cache_problem(first.path, TINY.fingerprint())
    healed = get_base(TINY, tmp_path, progress=False, log=messages.append)
    assert healed.built and "Rebuilding" in messages[-1] and "checksum" in messages[-1]
    assert cache_problem(healed.path, TINY.fingerprint()) is None

    (healed.path / META_FILE).write_text("{not json")
    assert "unreadable" in cache_problem(healed.path, TINY.fingerprint())
    model, tokenizer = get_base(TINY, tmp_path, progress=False, log=messages.append).load()
    assert model.config.hidden_size == 32 and tokenizer.eos_token == "<|end|>"

    # The config and tokenizer files are not checksummed: they must load, with the template.
    (healed.path / "chat_template.jinja").unlink()
    assert "chat template" in cache_problem(healed.path, TINY.fingerprint())
    healed = get_base(TINY, tmp_path, progress=False, log=messages.append)
    assert healed.built and "Rebuilding" in messages[-1]
    template = healed.path / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|end|>", "<|eot|>"))
    assert "not this version's" in cache_problem(healed.path, TINY.fingerprint())
    healed = get_base(TINY, tmp_path, progress=False, log=messages.append)
    assert healed.built and "Rebuilding" in messages[-1]
    (healed.path / "config.json").write_text("{trunc")
    assert "cannot be loaded" in cache_problem(healed.path, TINY.fingerprint())


def test_a_base_pretrained_on_another_device_is_cached_apart(tmp_path):
    cpu = base_path(TINY, tmp_path)
    assert cpu.name == f"demo-base-{TINY.fingerprint()}"  # CPU entries keep their names
    assert base_path(TINY, tmp_path, "cuda") == cpu.with_name(cpu.name + "-cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_base_pretrained_on_cuda_matches_the_cpu_build_within_float_noise(
    tmp_path, single_thread_torch
):
    recipe = replace(TINY, pretrain_steps=4)
    cpu = get_base(recipe, tmp_path, progress=False, log=lambda _: None)
    cuda = get_base(recipe, tmp_path, progress=False, log=lambda _: None, device="cuda")
    assert cuda.built and cuda.path != cpu.path
    assert json.loads((cuda.path / META_FILE).read_text())["device"] == "cuda"
    # same data, order and initialisation: the losses differ only by fp32 kernel rounding
    assert cuda.pretrain_loss == pytest.approx(cpu.pretrain_loss, abs=1e-3)
    model, _ = cuda.load()
    assert next(model.parameters()).device.type == "cpu"  # saved from the CPU copy


def test_a_build_stopped_by_sigterm_leaves_no_staging_folder(tmp_path):
    # A build long enough to be caught half-way; the child builds in its own cache folder. Two
    # torch threads: its stream (over 1 M tokens) is encoded by two forked workers, which must
    # not outlive it (they hold its stdout and stderr, so communicate() would wait for them).
    code = (
        "import sys, torch; from dataclasses import replace; torch.set_num_threads(2)\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_base_model import TINY; from rft_trl.demo.base_model import get_base\n"
        "get_base(replace(TINY, pretrain_steps=20000), sys.argv[1], progress=False)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300  # the child imports torch and transformers first
    while not list(tmp_path.glob(".demo-base-*")):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err  # ended by the signal, as without the handler
    assert list(tmp_path.iterdir()) == []  # neither a staging folder nor half a base


def test_build_is_deterministic_by_seed(tmp_path, single_thread_torch):
    a = get_base(TINY, tmp_path / "a", progress=False, log=lambda _: None)
    b = get_base(TINY, tmp_path / "b", progress=False, log=lambda _: None)
    c = get_base(replace(TINY, seed=1), tmp_path / "c", progress=False, log=lambda _: None)
    read = lambda base: json.loads((base.path / META_FILE).read_text())["weights_sha256"]  # noqa: E731
    assert read(a) == read(b)
    assert read(a) != read(c)


# ----------------------------------------------------------------------------- benchmarks/base_competence.py

COMPETENCE_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "base_competence.py"


def test_competence_of_an_untrained_base_is_zero_exact_and_counts_every_sample(
    tmp_path, single_thread_torch, benchmark_script
):
    model, tokenizer = get_base(TINY, tmp_path, progress=False, log=lambda _: None).load()
    result = benchmark_script("base_competence").competence(model, tokenizer, samples=4, seed=1)
    assert result["samples"] == 4
    # two pretraining steps cannot write a whole call; the tool-name share is a fraction of 4
    assert result["first_call_exact"] == 0.0
    assert result["tool_name"] in {0.0, 0.25, 0.5, 0.75, 1.0}
    assert "rewrite_exact" not in result

    class Recording:  # the tokenizer, keeping the prompts it is given
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def __call__(self, text, **kwargs):
            self.prompts.append(text)
            return tokenizer(text, **kwargs)

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    recording = Recording()
    spoken = benchmark_script("base_competence").competence(model, recording, 12, 1, spoken=True)
    assert spoken["first_call_exact"] == 0.0 and spoken["rewrite_exact"] == 0.0
    assert 0 < spoken["rewrite_samples"] < 12  # some first calls rewrite a value, some only copy
    # the requests say values in words: times with am/pm, counts as words, no ISO dates
    said = re.compile(
        r"\d:\d\d [ap]m|\b(two|three|four|five|six|seven|eight|nine|ten|[a-z]+teen)\b"
    )
    assert len(recording.prompts) == 12 and any(said.search(p) for p in recording.prompts)
    assert not any(re.search(r"\d{4}-\d\d-\d\d", p) for p in recording.prompts)


def test_a_missing_base_folder_is_refused_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, str(COMPETENCE_SCRIPT), "--base", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr and "rft-trl demo" in done.stderr
