"""Hub-free tokenizer, chat template and tiny Llama: masks, round trips, seeding and the recipe cache."""

from __future__ import annotations

import pytest
import torch
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer
from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

from rft_trl.synthetic import (
    TinyRecipe,
    build_tiny_checkpoint,
    build_tiny_model,
    evaluate_response,
    train_tokenizer,
)
from rft_trl.synthetic.tokenizer import ROLE_TOKENS


def test_special_tokens_and_eos_is_end_of_turn(tiny_tokenizer):
    assert tiny_tokenizer.eos_token == "<|end|>"
    assert tiny_tokenizer.pad_token == "<|pad|>" and tiny_tokenizer.bos_token == "<|bos|>"
    for token in ROLE_TOKENS:
        ids = tiny_tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tiny_tokenizer.convert_ids_to_tokens(ids) == [token]
    assert 700 <= len(tiny_tokenizer) <= 1100


def test_chat_template_roles_generation_prompt_and_assistant_mask(
    tiny_tokenizer, synthetic_samples
):
    react = next(s for s in synthetic_samples if s.family == "react" and len(s.calls) > 1)
    text = tiny_tokenizer.apply_chat_template(react.messages, tokenize=False)
    for role in ("system", "user", "assistant", "tool"):
        assert f"<|{role}|>" in text
    prompt = tiny_tokenizer.apply_chat_template(
        react.prompt_messages, tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|assistant|>") and text.startswith(prompt)
    out = tiny_tokenizer.apply_chat_template(
        react.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    expected = "".join(c + "<|end|>" for c in react.assistant_contents())
    # every assistant token and its end-of-turn token, nothing else
    assert tiny_tokenizer.decode(masked) == expected
    assert has_generation_markers(tiny_tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tiny_tokenizer)
    with pytest.raises(TemplateError, match="unknown role"):
        tiny_tokenizer.apply_chat_template([{"role": "robot", "content": "hi"}], tokenize=False)


def test_every_token_decodes_to_exact_text(tiny_tokenizer, synthetic_samples):
    for sample in synthetic_samples:
        text = tiny_tokenizer.apply_chat_template(sample.messages, tokenize=False)
        ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces = [tiny_tokenizer.decode([i]) for i in ids]
        assert "".join(pieces) == text


def test_plain_text_starts_with_bos(tiny_tokenizer):
    assert tiny_tokenizer("get_weather(city=Paris)")["input_ids"][0] == tiny_tokenizer.bos_token_id


def test_save_and_reload_give_the_same_tokenization(tmp_path, synthetic_samples):
    tokenizer = train_tokenizer(vocab_size=600, n_samples=200)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    for sample in synthetic_samples[:4]:
        a = tokenizer.apply_chat_template(sample.messages, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        b = reloaded.apply_chat_template(sample.messages, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        assert a == b
    assert reloaded.chat_template == tokenizer.chat_template
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_tokenizer(vocab_size=100)


def test_tiny_model_shape_and_seeded_init(tiny_checkpoint, tiny_model, tiny_tokenizer):
    config = tiny_model.config
    assert config.model_type == "llama"
    assert (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.intermediate_size,
    ) == (
        64,
        2,
        4,
        128,
    )
    assert config.vocab_size == len(tiny_tokenizer)
    assert config.max_position_embeddings >= 1024 and not config.tie_word_embeddings
    assert tiny_model.generation_config.eos_token_id == tiny_tokenizer.eos_token_id
    a = build_tiny_model(tiny_tokenizer, seed=3)
    b = build_tiny_model(tiny_tokenizer, seed=3)
    c = build_tiny_model(tiny_tokenizer, seed=4)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    ids = torch.tensor([tiny_tokenizer("Thought: hello")["input_ids"]])
    assert tiny_model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tiny_tokenizer))
    with pytest.raises(ValueError, match="hidden_size=30"):
        build_tiny_model(tiny_tokenizer, hidden_size=30)


def test_checkpoint_cache_is_keyed_by_recipe(tmp_path):
    small = {
        "vocab_size": 512,
        "tokenizer_samples": 100,
        "hidden_size": 32,
        "intermediate_size": 64,
    }
    first = build_tiny_checkpoint(tmp_path, **small)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = build_tiny_checkpoint(tmp_path, TinyRecipe(**small))
    assert again == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
    other = build_tiny_checkpoint(tmp_path, **{**small, "seed": 1})
    assert other != first
    # no staging directory left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])
    with pytest.raises(ValueError, match="hidden"):
        build_tiny_checkpoint(tmp_path, hidden=3)


def test_untrained_model_generates_from_a_prompt_and_is_scored(
    tiny_model, tiny_tokenizer, synthetic_samples
):
    sample = synthetic_samples[0]
    inputs = tiny_tokenizer.apply_chat_template(
        sample.prompt_messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    out = tiny_model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    text = tiny_tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert not evaluate_response(sample, text).exact_match
