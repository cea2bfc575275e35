"""A chat template without {% generation %} markers (what instruct models ship) trains with loss on the assistant
turns + end-of-turn only (mlift.train.chat_masks), fast, on the tiny Llama; tests/test_real_templates.py does the same
through real families' tokenizers (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, TINY_CHAT_TEMPLATE, shared_path

from mlift.cli import main as cli_main
from mlift.train.chat import prepare_tokenizer
from mlift.train.chat_masks import conversation_examples

NATIVE = TINY_CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
CONVO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Translate the following text."},
         {"role": "assistant", "content": "All human beings are born free."}, {"role": "user", "content": "Question:"},
         {"role": "assistant", "content": "Paris."}]


def _model(tiny_llama: Path, tmp_path: Path, template: str) -> Path:
    from transformers import AutoTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = template
    tok.save_pretrained(model)
    return model


def test_native_template_masks_exactly_the_assistant_turns(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = NATIVE
    info = prepare_tokenizer(tok)
    assert info["loss_mask"] == "template-prefix" and info["eos_token"] == "</s>" and info["eos_in_mask"]
    [example] = conversation_examples(tok, CONVO, "</s>")
    ids, mask = example["input_ids"], example["assistant_masks"]
    trained = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tok.decode(trained) == "All human beings are born free.</s>Paris.</s>"
    first = mask.index(1)  # everything before the first answer is the inference prompt, untrained
    prompt = tok.apply_chat_template(CONVO[:2], tokenize=False, add_generation_prompt=True)
    assert ids[:first] == tok(prompt, add_special_tokens=False)["input_ids"]


def _train(model: Path, out: Path) -> int:
    return cli_main(["train", str(REPO / "recipes/stories260k/lora-sft/config.yaml"), "--set", f"output_dir={out}",
                     "--set", f"model.name_or_path={model}", "--set", "sft.max_steps=1",
                     "--set", f"data.datasets=[{{path: {shared_path('data', 'alpaca', 'alpaca_tiny.json')}, limit: 4}}]"])


def test_train_with_a_native_template(tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _train(_model(tiny_llama, tmp_path, NATIVE), out) == 0
    chat = json.loads((out / "manifest.json").read_text())["chat"]
    assert chat["loss_mask"] == "template-prefix" and chat["generation_markers"] is False


def test_a_template_without_an_end_of_turn_token_is_refused(tiny_llama: Path, tmp_path: Path, capsys) -> None:
    plain = NATIVE.replace("eos_token", "'.'")  # turns end in plain text: nothing to learn to stop on
    assert _train(_model(tiny_llama, tmp_path, plain), tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "not a special token" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_eos_that_is_not_the_end_of_turn_is_refused(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = NATIVE.replace("eos_token", "'</s>'")  # the template ends turns with </s> whatever the EOS
    with pytest.raises(ValueError, match="not what the chat template"):
        prepare_tokenizer(tok, eos_token="<pad>")
