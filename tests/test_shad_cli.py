"""`rft-trl shad` and `rft-trl inspect`: real YAML configs, local data files, escaping, and clean errors."""

from __future__ import annotations

import re
from typing import ClassVar

import pytest
import yaml
from datasets import Dataset

from rft_trl.cli import main
from rft_trl.shad import load_labels, save_labels
from rft_trl.shad.labels_io import LabelsDir
from rft_trl.shad.viewer import Row, render_html, render_terminal, safe_text
from rft_trl.synthetic import generate_samples, to_messages_dataset, to_prompt_completion_dataset

ANSI_RE = re.compile(r"\x1b\[")


def write_config(tmp_path, checkpoint, data, **overrides) -> str:
    config = {
        "model_name_or_path": str(checkpoint),
        "dataset_name": str(data),
        "max_length": 640,
        "per_device_train_batch_size": 4,
        "learning_rate": 0.005,
        "use_cpu": True,
        "output_dir": str(tmp_path / "run"),
        "report_to": "none",
        "shad_min_steps": 2,
        "shad_cache_dir": str(tmp_path / "cache"),
        **overrides,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.fixture(scope="module")
def labelled(tiny_checkpoint, tmp_path_factory):
    """`rft-trl shad` on a messages jsonl with LoRA; returns (labels dir, config path, tmp dir)."""
    tmp = tmp_path_factory.mktemp("shad_cli")
    data = tmp / "train.jsonl"
    to_messages_dataset(generate_samples(12, "mixed", seed=2)).to_json(str(data))
    config = write_config(
        tmp,
        tiny_checkpoint,
        data,
        assistant_only_loss=True,
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        lora_target_modules="all-linear",
    )
    assert main(["shad", "--config", config, "--output", str(tmp / "labels")]) == 0
    return tmp / "labels", config, tmp


def test_shad_writes_labels_that_match_the_trainers_tokenization(labelled, tiny_checkpoint, capsys):
    labels, config, _ = labelled
    assert {p.name for p in labels.iterdir()} >= {"metadata.json", "train.parquet", "tokenizer"}
    # The same YAML through SFTTrainer gives exactly the rows the labels were made for.
    from trl import SFTTrainer

    from rft_trl.commands.shad import load_train_eval, parse_config

    script_args, args, _, mixture = parse_config(config)
    train, _ = load_train_eval(script_args, args, mixture)
    trainer = SFTTrainer(model=str(tiny_checkpoint), args=args, train_dataset=train)
    attached = load_labels(labels, trainer.train_dataset)
    assert len(attached) == len(trainer.train_dataset)
    for labs, cls in zip(attached["labels"], attached["token_class"], strict=True):
        assert [x == -100 for x in labs] == [c == -100 for c in cls]


def test_training_on_the_same_config_reuses_the_shad_cache_entry(labelled, tiny_checkpoint):
    """`rft-trl shad` then training the same YAML (without shad_labels_path) is a cache hit: both
    name the model the same way in the key (`shad` added TRL's default revision '@main')."""
    from trl import get_peft_config

    from rft_trl.commands.shad import load_train_eval, parse_config
    from rft_trl.trainer import RFTTrainer

    _, config, _ = labelled
    script_args, args, model_args, mixture = parse_config(config)
    train, _ = load_train_eval(script_args, args, mixture)
    trainer = RFTTrainer(
        model=str(tiny_checkpoint),
        args=args,
        train_dataset=train,
        peft_config=get_peft_config(model_args),
    )
    trainer.ensure_labels()
    assert trainer.shad_report.cache == "hit"


def test_shad_labels_a_shuffled_packed_padding_free_config_as_rft_trainer_prepares_it(
    tiny_checkpoint, tmp_path, capsys
):
    # TRL shuffles the prepared set with `shuffle_dataset`, and refuses `padding_free` without
    # packing; the CLI now prepares rows as RFTTrainer does (unpacked, unshuffled) for both.
    from rft_trl.commands.shad import load_train_eval, parse_config
    from rft_trl.trainer import RFTTrainer

    data = tmp_path / "train.jsonl"
    to_messages_dataset(generate_samples(12, "mixed", seed=3)).to_json(str(data))
    config = write_config(
        tmp_path,
        tiny_checkpoint,
        data,
        assistant_only_loss=True,
        shuffle_dataset=True,
        packing=True,
        padding_free=True,
    )
    labels = tmp_path / "labels"
    assert main(["shad", "--config", config, "--output", str(labels)]) == 0
    script_args, args, _, mixture = parse_config(config)
    args.shad_labels_path = str(labels)
    train, _ = load_train_eval(script_args, args, mixture)
    trainer = RFTTrainer(model=str(tiny_checkpoint), args=args, train_dataset=train)
    packed = trainer.train_dataset  # labels attached at construction, then packed
    assert "token_class" in packed.column_names
    assert sum(len(r) for r in packed["input_ids"]) == sum(
        len(r) for r in load_labels(labels)["input_ids"]
    )
    for labs, cls in zip(packed["labels"], packed["token_class"], strict=True):
        assert [x == -100 for x in labs] == [c == -100 for c in cls]


def test_shad_prompt_completion_parquet_folder_without_peft(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    to_prompt_completion_dataset(generate_samples(10, "mixed", seed=4)).to_parquet(
        str(folder / "train.parquet")
    )
    config = write_config(tmp_path, tiny_checkpoint, folder)
    assert main(["shad", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "boilerplate fraction" in out and "Prompt-swap probe" in out and "Time:" in out
    data = load_labels(tmp_path / "run" / "_shad_labels")
    assert len(data) == 10 and "token_class" in data.column_names


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset_name": "/nonexistent/data.jsonl"}, "Cannot load dataset"),
        ({"shad_sample_ratio": 2.0}, "shad_sample_ratio"),
        ({"shad_min_steps": 0}, "shad_min_steps"),
        ({"not_a_key": 1}, "not_a_key"),
        ({"num_processes": 2}, "does not start processes"),  # parsed as `rft-trl train` parses
        ({"model_name_or_path": None}, "no `model_name_or_path`"),
    ],
)
def test_shad_bad_config_fails_cleanly(tiny_checkpoint, tmp_path, capsys, overrides, message):
    data = tmp_path / "train.jsonl"
    to_prompt_completion_dataset(generate_samples(4, "mixed", seed=4)).to_json(str(data))
    config = write_config(tmp_path, tiny_checkpoint, data, **overrides)
    assert main(["shad", "--config", config, "--output", str(tmp_path / "labels")]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # one paragraph, after any progress bars
    assert last.startswith("rft-trl shad: error:") and message in last and "Traceback" not in err
    assert not (tmp_path / "labels").exists()


def test_shad_output_that_cannot_take_labels_fails_before_any_work(
    tiny_checkpoint, tmp_path, capsys
):
    data = tmp_path / "train.jsonl"
    to_prompt_completion_dataset(generate_samples(4, "mixed", seed=4)).to_json(str(data))
    config = write_config(tmp_path, tiny_checkpoint, data)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    for output, message in (("a-file", "is a file"), ("other", "not a labels directory")):
        assert main(["shad", "--config", config, "--output", str(tmp_path / output)]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # SHAD never started
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


def test_shad_takes_key_value_overrides_as_train_does(tiny_checkpoint, tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    to_prompt_completion_dataset(generate_samples(8, "mixed", seed=4)).to_json(str(data))
    config = write_config(tmp_path, tiny_checkpoint, data)
    labels = tmp_path / "labels"
    argv = ["shad", "--config", config, "--output", str(labels), "--shad_threshold", "0.25"]
    assert main(argv) == 0
    assert LabelsDir(labels).metadata["threshold"] == 0.25  # the YAML leaves the default, 0


def test_shad_without_response_tokens_fails_cleanly(tiny_checkpoint, tmp_path, capsys):
    # A pre-tokenized dataset whose labels are all -100 (SFTTrainer keeps given labels as they are).
    tokenized = tmp_path / "tok.jsonl"
    Dataset.from_dict({"input_ids": [[1, 2, 3]] * 4, "labels": [[-100] * 3] * 4}).to_json(
        str(tokenized)
    )
    config = write_config(tmp_path, tiny_checkpoint, tokenized)
    assert main(["shad", "--config", config, "--output", str(tmp_path / "labels")]) == 2
    err = capsys.readouterr().err
    assert "no response tokens" in err and "Traceback" not in err
    assert not (tmp_path / "labels").exists()


def test_inspect_terminal_plain_and_color(labelled, capsys, monkeypatch):
    labels, _, _ = labelled
    assert main(["inspect", str(labels), "--samples", "2", "--color", "never"]) == 0
    plain = capsys.readouterr().out
    assert "--- sample 0" in plain and "--- sample 1" in plain and "--- sample 2" not in plain
    assert "against ground truth" in plain  # derived from the synthetic gt_spans column
    assert not ANSI_RE.search(plain)
    assert main(["inspect", str(labels), "--samples", "1", "--color", "always"]) == 0
    assert ANSI_RE.search(capsys.readouterr().out)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["inspect", str(labels), "--samples", "1"]) == 0
    assert not ANSI_RE.search(capsys.readouterr().out)


def test_inspect_threshold_and_html(labelled, capsys):
    labels, _, tmp = labelled
    assert main(["inspect", str(labels), "--threshold", "1000", "--color", "never"]) == 0
    assert "100.0% boilerplate at LD <= 1000" in capsys.readouterr().out
    page = tmp / "new-folder" / "labels.html"  # a missing folder is created
    assert main(["inspect", str(labels), "--html", str(page), "--samples", "2"]) == 0
    assert main(["inspect", str(labels), "--html", str(tmp)]) == 2
    assert "is a folder" in capsys.readouterr().err
    text = page.read_text()
    assert (
        text.startswith("<!DOCTYPE html>") and "legend" in text and 'title="reasoning | LD=' in text
    )


def test_inspect_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


class FakeTokenizer:
    pieces: ClassVar[dict[int, str]] = {
        1: "<script>alert(1)</script>",
        2: "\x1b[2J\x1b]0;pwned\x07",
        3: "ok\n",
        4: "\u202eevil",
    }

    def decode(self, ids, **kwargs):
        return self.pieces[ids[0]]


def test_token_text_is_escaped_for_terminal_and_html():
    row = Row(
        index=0,
        input_ids=[3, 1, 2, 4],
        token_class=[-100, 1, 0, 1],
        l_o=[0, 1, 1, 1],
        l_s=[0, 2, 0, 2],
        gt_class=[-100, 1, 1, 1],
    )
    for color in (True, False):
        out = render_terminal([row], FakeTokenizer(), color)
        assert (
            "\x1b[2J" not in out
            and "\x1b]0" not in out
            and "\x07" not in out
            and "\u202e" not in out
        )
        assert "\\x1b[2J" in out and "\\u202e" in out
    page = render_html([row], FakeTokenizer(), title="<t>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "\x1b" not in page
    assert "disagrees with the ground truth" in page
    # Labels without a ground truth (any real dataset): the legend promises no comparison.
    unknown = Row(index=0, input_ids=[3, 1], token_class=[-100, 1], l_o=[0, 1], l_s=[0, 2])
    for color in (True, False):
        assert "ground truth" not in render_terminal([unknown], FakeTokenizer(), color)
    assert "ground truth" not in render_html([unknown], FakeTokenizer(), title="t")
    assert "<title>&lt;t&gt;</title>" in page
    assert 'class="b x"' in page  # boilerplate where the truth says reasoning
    assert safe_text("a\tb\nc\x00") == "a\tb\nc\\x00"


def test_inspect_shows_stored_ground_truth_accuracy(tmp_path, capsys):
    data = Dataset.from_dict(
        {
            "input_ids": [[5, 6, 7, 8]],
            "labels": [[-100, 6, 7, 8]],
            "token_class": [[-100, 1, 0, 0]],
            "shad_l_o": [[0.0, 1.0, 1.0, 1.0]],
            "shad_l_s": [[0.0, 2.0, 0.5, 0.5]],
            "gt_class": [[-100, 1, 1, 0]],
        }
    )
    save_labels(data, tmp_path / "labels", metadata={"threshold": 0.0})
    assert main(["inspect", str(tmp_path / "labels"), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "accuracy 66.7%" in out and "precision 1.00 recall 0.50" in out
    assert "<7>‼" in out  # token 7 disagrees with the truth (no tokenizer saved: ids shown)
