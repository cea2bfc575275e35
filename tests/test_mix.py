"""Mixture counts: the documented Pinch rule (exact, deterministic), largest-remainder budgets, and the `mlift mix`
command on real instruction data (Alpaca English + Alpaca Chinese demo sets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlift.baselines.common import read_stage
from mlift.cli import main
from mlift.data.mix import apportion, even_split, pinch_plan

PINCH_LANGS = ["eng_Latn", "arb_Arab", "zho_Hans", "ces_Latn", "est_Latn", "fin_Latn", "heb_Hebr", "hin_Deva",
               "ita_Latn", "rus_Cyrl", "spa_Latn"]  # 11 languages counting English


def test_pinch_one_percent_of_4640_over_11_languages():
    plan = pinch_plan(4640, PINCH_LANGS, percent=1)
    assert plan.multilingual_budget == 46 and plan.per_language_base == 4 and plan.remainder == 2
    assert plan.per_language == {lang: 4 for lang in PINCH_LANGS[1:]}
    assert plan.replaced == 40 and plan.english_kept == 4600 and plan.total == 4640
    # 11 languages none of which is English: 4 each = 44 (drop), or 46 with the remainder spread.
    others = PINCH_LANGS[1:] + ["swh_Latn"]
    assert pinch_plan(4640, others, percent=1).replaced == 44
    spread = pinch_plan(4640, others, percent=1, remainder="spread", seed=7)
    assert spread.replaced == 46 and sorted(spread.per_language.values()) == [4] * 9 + [5] * 2
    assert spread.per_language == pinch_plan(4640, others, percent=1, remainder="spread", seed=7).per_language
    assert any(pinch_plan(4640, others, percent=1, remainder="spread", seed=s).per_language != spread.per_language
               for s in range(8))
    # Nothing to spread (P = 0, or a budget that divides evenly) is not an error.
    assert pinch_plan(4640, others, percent=0, remainder="spread").replaced == 0
    assert pinch_plan(4640, others, percent=100, remainder="spread").replaced == 4640
    # Exact arithmetic: 0.1% of 10,000 is 10, not 9 (no float floor error).
    assert pinch_plan(10_000, ["fra_Latn"], percent=0.1).replaced == 10
    assert pinch_plan(4640, PINCH_LANGS, count=40).per_language_base == 3


def test_largest_remainder_budgets():
    assert even_split(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}
    assert apportion(40, {"x": 1, "y": 3}) == {"x": 10, "y": 30}
    counts = apportion(100, {"a": 1, "b": 1, "c": 1, "d": 4})
    assert sum(counts.values()) == 100 and counts == {"a": 15, "b": 14, "c": 14, "d": 57}
    with pytest.raises(ValueError):
        apportion(5, {"a": 0})


def _write(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj, allow_unicode=True), encoding="utf-8")
    return path


def _run(tmp_path: Path, name: str, mixture: dict, seed: int = 0) -> tuple[dict, list]:
    out = tmp_path / name
    recipe = _write(tmp_path / f"{name}.yaml", {"seed": seed, "output_dir": str(out), "num_shards": 2, "mixture": mixture})
    assert main(["mix", str(recipe), "--no-progress"]) == 0
    return json.loads((out / "manifest.json").read_text()), read_stage(out, "dataset/mix")


def test_pinch_mixture_on_real_data_is_exact_and_deterministic(tmp_path, shared_dir):
    alpaca = shared_dir / "data/alpaca"
    mixture = {"kind": "pinch", "english": {"path": str(alpaca / "alpaca_en_demo.json"), "lang": "eng_Latn"},
               "multilingual": {"path": str(alpaca / "alpaca_zh_demo.json"), "lang": "zho_Hans"},
               "langs": ["eng_Latn", "zho_Hans"], "percent": 2}
    m, recs = _run(tmp_path, "a", mixture)
    # N = 999, P = 2 -> M = floor(19.98) = 19 over 2 languages -> q = 9, r = 1 (dropped): 9 Chinese replace 9 English.
    assert m["plan"]["multilingual_budget"] == 19 and m["plan"]["per_language"] == {"zho_Hans": 9}
    assert m["languages"] == {"eng_Latn": 990, "zho_Hans": 9} and m["total_records"] == 999 == len(recs)
    assert m["stages"]["dataset/mix"]["counts"]["keep"] == 999
    zh = [r for r in recs if r.lang == "zho_Hans"]
    assert len({r.meta["replaces"] for r in zh}) == 9 and len({r.id for r in recs}) == 999
    _, again = _run(tmp_path, "b", mixture)
    assert [r.to_json() for r in again] == [r.to_json() for r in recs]  # same seed: the same mixture, byte for byte
    _, other = _run(tmp_path, "c", mixture, seed=1)
    assert {r.id for r in other if r.lang == "zho_Hans"} != {r.id for r in zh}
    import datasets

    ds = datasets.load_dataset("json", data_files=m["data_files"], split="train")
    assert len(ds) == 999 and ds.column_names == ["id", "lang", "messages", "meta"]


def test_k_language_and_weighted_and_monolingual(tmp_path, shared_dir):
    alpaca = shared_dir / "data/alpaca"
    both = tmp_path / "both.jsonl"
    rows = []
    for name, lang in (("alpaca_en_demo", "eng_Latn"), ("alpaca_zh_demo", "zho_Hans")):
        for i, r in enumerate(json.loads((alpaca / f"{name}.json").read_text())[:30]):
            rows.append({"id": f"{name}-{i}", "lang": lang, "instruction": r["instruction"], "input": r["input"],
                         "output": r["output"], "meta": {"source_id": f"ex-{i}"}})
    both.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    m, recs = _run(tmp_path, "k", {"kind": "k_lang", "source": {"path": str(both)}, "langs": ["en", "zh"],
                                   "budget": 11})
    assert m["plan"]["per_language"] == {"eng_Latn": 6, "zho_Hans": 5} and m["languages"] == m["plan"]["per_language"]
    assert len({r.meta["source_id"] for r in recs}) == 11  # no source example in two languages
    m, recs = _run(tmp_path, "w", {"kind": "weighted", "budget": 20, "sources": [
        {"source": {"path": str(alpaca / "alpaca_en_demo.json"), "lang": "eng_Latn"}, "weight": 1},
        {"source": {"path": str(alpaca / "alpaca_zh_demo.json"), "lang": "zho_Hans"}, "weight": 3}]})
    assert [s["count"] for s in m["plan"]["per_source"]] == [5, 15] and m["languages"] == {"zho_Hans": 15, "eng_Latn": 5}
    m, recs = _run(tmp_path, "mono", {"kind": "monolingual", "source": {"path": str(both)}, "lang": "zh"})
    assert m["languages"] == {"zho_Hans": 30} and all(r["messages"][1]["role"] == "assistant" for r in recs)


@pytest.mark.slow  # loads TRL and trains two steps
def test_trl_sft_trains_on_a_mixture_directly(tmp_path, shared_dir, stories260k):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    alpaca = shared_dir / "data/alpaca"
    m, _ = _run(tmp_path, "sft", {"kind": "weighted", "budget": 8, "sources": [
        {"source": {"path": str(alpaca / "alpaca_tiny.json"), "lang": "eng_Latn"}, "weight": 1},
        {"source": {"path": str(alpaca / "alpaca_zh_demo.json"), "lang": "zho_Hans"}, "weight": 1}]})
    ds = datasets.load_dataset("json", data_files=m["data_files"], split="train")
    tok = AutoTokenizer.from_pretrained(stories260k)
    tok.chat_template = (  # with {% generation %} markers, for the assistant-only loss
        "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ 'Assistant: ' }}{% generation %}"
        "{{ m['content'] + eos_token }}{% endgeneration %}{{ '\\n' }}{% else %}{{ 'User: ' + m['content'] + '\\n' }}"
        "{% endif %}{% endfor %}")
    tok.pad_token = tok.pad_token or tok.unk_token
    model = AutoModelForCausalLM.from_pretrained(stories260k)
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2, max_length=512,
                     assistant_only_loss=True, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1)
    result = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok).train()
    assert result.global_step == 2 and result.training_loss > 0


def test_a_data_build_is_a_wandb_run_when_wandb_project_is_set(tmp_path, shared_dir, monkeypatch):
    """WANDB_PROJECT (+ WANDB_RUN_GROUP) in the environment, as a sweep sets it: the finished build is one offline run
    with job_type = the command, the manifest's counts as summary; an array task (--shard) logs nothing."""
    from wandb_runs import offline_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_PROJECT", "mlift-test")
    monkeypatch.setenv("WANDB_RUN_GROUP", "sweep-x")
    mixture = {"kind": "weighted", "budget": 8,
               "sources": [{"source": {"path": str(shared_dir / "data/alpaca/alpaca_en_demo.json"), "lang": "eng_Latn"},
                            "weight": 1}]}
    recipe = _write(tmp_path / "w.yaml", {"output_dir": str(tmp_path / "w"), "num_shards": 2, "mixture": mixture})
    assert main(["mix", str(recipe), "--no-progress", "--shard", "0/2"]) == 0
    assert offline_runs(tmp_path / "wandb") == []
    assert main(["mix", str(recipe), "--no-progress"]) == 0
    [run] = offline_runs(tmp_path / "wandb")
    assert (run["project"], run["group"], run["job_type"], run["name"]) == ("mlift-test", "sweep-x", "mix",
                                                                             f"{tmp_path.name}/w")
    assert {"dataset/mix/keep", "dataset/mix/in"} <= run["summary"]
    assert list(run["dir"].glob("files/media/table/stages_*.table.json"))
