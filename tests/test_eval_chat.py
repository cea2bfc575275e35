"""Fine-tuned models are evaluated the way they were trained (issue 12 item 2) and generation is not cut (item 3):
a LoRA adapter trained by `mlift train` on the 260K Llama (a base model with no chat template: training saves mlift's
default template beside the adapter) is evaluated by `mlift eval --adapter`; lm-eval's own logged samples show the
prompt rendered with the adapter's template, and the manifest's sha256 is that file's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared_path

from mlift.cli import main as cli_main


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory, stories260k: Path) -> Path:
    out = tmp_path_factory.mktemp("lora") / "adapter"
    rc = cli_main(["train", str(REPO / "recipes/stories260k/lora-sft/config.yaml"), "--set", f"output_dir={out}",
                   "--set", f"model.name_or_path={stories260k}", "--set", "sft.max_steps=2",
                   "--set", f"data.datasets=[{{path: {shared_path('data', 'alpaca', 'alpaca_tiny.json')}}}]"])
    assert rc in (0, None)
    assert (out / "adapter_model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    return out


def _context(sample: dict) -> str:
    return sample["arguments"][0][0]


def _gen_kwargs(sample: dict) -> dict:
    return sample["arguments"][0][1]


def test_lora_model_is_prompted_through_its_own_chat_template(tmp_path: Path, stories260k: Path,
                                                              lora_adapter: Path) -> None:
    from transformers import AutoTokenizer

    base_tok = AutoTokenizer.from_pretrained(stories260k)
    assert not base_tok.chat_template  # so the template can only have come from the adapter directory
    template = (lora_adapter / "chat_template.jinja").read_text(encoding="utf-8")
    suite = tmp_path / "suite.yaml"  # no apply_chat_template key: the default (auto) must turn it on
    # short articles: the whole chat-formatted prompt fits the 512-token context (no left truncation)
    suite.write_text(yaml.safe_dump({"seed": 3, "limit": 2, "threads": 1, "data_dir": str(shared_path("data")),
                                     "xlsum": {"fewshot_split": None, "max_article_chars": 300},
                                     "flores": {"directions": ["xx-en"]}}))
    out = tmp_path / "out"
    assert cli_main(["eval", "--model", str(stories260k), "--adapter", str(lora_adapter), "--suite", str(suite),
                     "--langs", "fr", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    sha = hashlib.sha256(template.encode("utf-8")).hexdigest()
    chat = manifest["chat_template"]
    assert manifest["apply_chat_template"] is True and chat["applied"] is True
    assert "trained by mlift train" in chat["reason"]
    assert chat["sha256"] == sha and chat["file"] == str((lora_adapter / "chat_template.jinja").resolve())
    assert manifest["model_args"]["tokenizer"] == str(lora_adapter)
    results = json.loads((out / "results.json").read_text())

    adapter_tok = AutoTokenizer.from_pretrained(lora_adapter)
    for task in ("mlift_xlsum_fra_Latn", "mlift_flores_fra_Latn-eng_Latn"):
        samples = [json.loads(x) for x in (out / "samples" / f"{task}.jsonl").read_text().splitlines()]
        assert len(samples) == 2
        cfg = results["configs"][task]
        for s in samples:
            ctx = _context(s)
            assert ctx.startswith("<s><|user|>\n") and ctx.endswith("\n<|assistant|>\n"), ctx[:80]
            # exactly the adapter template's rendering of the task prompt as one user turn
            from jinja2 import Template

            prompt = Template(cfg["doc_to_text"]).render(**s["doc"])
            assert ctx == adapter_tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                          add_generation_prompt=True)
            # chat stops: the template's end-of-turn (here EOS), not "\n"; the budget follows the references
            kwargs = _gen_kwargs(s)
            assert "</s>" in kwargs["until"] and "\n" not in kwargs["until"]
        spec = next(t for t in manifest["tasks"] if t["name"] == task)
        gen = spec["generation"]
        assert gen["max_gen_toks"] == _gen_kwargs(samples[0])["max_gen_toks"]
        refs = [s["doc"]["summary" if "xlsum" in task else "tgt"] for s in samples]
        longest = max(len(adapter_tok(r, add_special_tokens=False)["input_ids"]) for r in refs)
        assert gen["longest_reference_tokens"] == longest
        assert gen["max_gen_toks"] == min(-(-3 * longest // 2), 512 // 2)  # at most half the 512-token context


def test_base_model_stays_on_completion_prompts_with_task_stops(tmp_path: Path, stories260k: Path) -> None:
    """auto is off for a model mlift did not train; completion stops: "\\n\\n" for XL-Sum (multi-line summaries),
    "\\n" for FLORES sentences; no first-line cut of predictions."""
    from mlift.eval.hooks import _clean

    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"limit": 1, "threads": 1, "data_dir": str(shared_path("data")),
                                     "xlsum": {"fewshot_split": None, "max_article_chars": 300}, "flores": {"directions": ["en-xx"]}}))
    out = tmp_path / "out"
    assert cli_main(["eval", "--model", str(stories260k), "--suite", str(suite), "--langs", "hi", "--out",
                     str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["apply_chat_template"] is False and manifest["chat_template"]["sha256"] is None
    gens = {t["name"]: t["generation"] for t in manifest["tasks"]}
    assert gens["mlift_xlsum_hin_Deva"]["until"] == ["\n\n"]
    assert gens["mlift_flores_eng_Latn-hin_Deva"]["until"] == ["\n"]
    # Hindi in this English byte-level tokenizer: 1.5x the reference exceeds the context, so the budget is capped
    hindi = gens["mlift_flores_eng_Latn-hin_Deva"]
    assert hindi["uncapped"] > 256 and hindi["max_gen_toks"] == 256 and hindi["longest_reference_tokens"] > 170
    sample = json.loads((out / "samples" / "mlift_xlsum_hin_Deva.jsonl").read_text().splitlines()[0])
    assert not _context(sample).startswith("<s><|user|>")
    assert _clean("Line one.\nLine two.") == "Line one.\nLine two."  # multi-line summaries are kept whole
    assert _clean("Here is the summary:\nThe answer.") == "The answer."  # a known preamble is stripped


def test_vllm_and_hf_model_args_take_the_adapter_tokenizer(tmp_path: Path, stories260k: Path,
                                                           lora_adapter: Path) -> None:
    from mlift.eval.run import model_spec
    from mlift.eval.suite import EvalSuite

    for backend, adapter_key in (("hf", "peft"), ("vllm", "lora_local_path")):
        kind, args = model_spec(EvalSuite(backend=backend), str(stories260k), str(lora_adapter))
        assert kind == backend and args["tokenizer"] == str(lora_adapter) and args[adapter_key] == str(lora_adapter)
    bare = tmp_path / "bare"  # an adapter directory without a tokenizer: lm-eval loads the model's
    bare.mkdir()
    (bare / "adapter_config.json").write_text((lora_adapter / "adapter_config.json").read_text())
    assert "tokenizer" not in model_spec(EvalSuite(), str(stories260k), str(bare))[1]


def test_end_of_turn_follows_the_template(stories260k: Path) -> None:
    from transformers import AutoTokenizer

    from mlift.eval.model import end_of_turn

    tok = AutoTokenizer.from_pretrained(stories260k)
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert end_of_turn(tok) == "<|im_end|>"
    tok.chat_template = ("{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
                         "{% endfor %}")
    assert end_of_turn(tok) == "<end_of_turn>"
