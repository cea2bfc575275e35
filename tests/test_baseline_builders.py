"""The translation builders end to end with a real LLM translator (the pretrained 260K Llama from ../shared):
records TRL trains on, same source id across languages, manifests whose counts add up, resume, placeholder quarantine,
N-shot samples that never contain the example itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlift.baselines.common import read_stage
from mlift.baselines.sphinx import NShotStage
from mlift.cli import main
from mlift.records import Record, read_records

# A chat template with {% generation %} markers, as TRL's assistant-only loss needs.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ 'Assistant: ' }}{% generation %}{{ message['content'] + eos_token }}"
    "{% endgeneration %}{{ '\\n' }}{% else %}{{ 'User: ' + message['content'] + '\\n' }}{% endif %}{% endfor %}"
)


def _translator(model: Path, tokens: int = 8) -> dict:
    return {"kind": "llm", "mode": "completion", "fewshot": 1, "max_new_tokens": tokens, "on_truncated": "keep",
            "llm": {"backend": "transformers", "model": str(model), "batch_size": 16}}


def _write(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj, allow_unicode=True), encoding="utf-8")
    return path


def _manifest_adds_up(out: Path) -> dict:
    m = json.loads((out / "manifest.json").read_text())
    n_in = m["input"]["records"]
    for name, st in m["stages"].items():
        c = st["counts"]
        assert c["in"] == c["keep"] + c["drop"] + c["quarantine"], name
        assert sum(st["reasons"]["quarantine"].values()) == c["quarantine"]
        if name.startswith("translated/") or name.startswith("dataset/"):
            assert st["shards_done"] == m["num_shards"]
    assert m["total_records"] == sum(v["keep"] for v in m["languages"].values())
    for short, c in m["languages"].items():
        translated = m["stages"].get(f"translated/{short}")
        # every input example is accounted for: kept, dropped or quarantined, stage by stage
        assert c["in"] == (translated["counts"]["keep"] if translated else n_in)
        if translated:
            assert translated["counts"]["in"] == n_in
    return m


def _kept(out: Path, short: str) -> list[Record]:
    return read_stage(out, f"dataset/{short}")


@pytest.mark.slow  # ~30 s on a loaded 2-core machine (two model loads + a rerun)
def test_translated_alpaca_with_regeneration(tmp_path, shared_dir, stories260k):
    out = tmp_path / "ta"
    recipe = _write(tmp_path / "ta.yaml", {
        "seed": 0, "output_dir": str(out), "num_shards": 2,
        "source": {"path": str(shared_dir / "data/alpaca/alpaca_tiny.json"), "limit": 2},
        "target_langs": ["eng_Latn", "fra_Latn"], "translator": _translator(stories260k),
        "regenerate": {"llm": {"backend": "transformers", "model": str(stories260k)}, "max_new_tokens": 8},
    })
    assert main(["baseline", "translated-alpaca", str(recipe), "--no-progress"]) == 0
    m = _manifest_adds_up(out)
    assert m["languages"]["fr"]["in"] == 2 == m["languages"]["en"]["in"]
    en, fr = _kept(out, "en"), _kept(out, "fr")
    assert {r.id for r in fr} <= {r.id for r in en} and len(en) == 2  # the same source id in every language
    src = json.loads((shared_dir / "data/alpaca/alpaca_tiny.json").read_text())[:2]
    for rec, row in zip(en, src):
        assert rec.lang == "eng_Latn" and rec.meta["source_id"] == rec.id
        assert rec["messages"][0] == {"role": "user", "content": row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")}
        assert rec.meta["translated_output"] == row["output"]  # the original answer kept beside the regenerated one
        assert rec.meta["regenerated_by"].endswith("stories260K")
    for rec in fr:
        assert [x["role"] for x in rec["messages"]] == ["user", "assistant"] and rec.lang == "fra_Latn"
        assert rec.meta["translated_by"].startswith("llm:")
    _trl_ready(m, stories260k)
    # Resume: a rerun redoes nothing and leaves identical shards.
    before = {p: p.read_bytes() for p in out.glob("dataset/*/shard-*.jsonl")}
    assert main(["baseline", "translated-alpaca", str(recipe), "--no-progress"]) == 0
    assert {p: p.read_bytes() for p in out.glob("dataset/*/shard-*.jsonl")} == before


CODE = "```python\ndef greet(name):\n\treturn f'hi {name}'  \n```"


def test_sphinx_quarantines_lost_placeholders_and_builds_nshot(tmp_path, shared_dir, stories260k):
    rows = [
        {"instruction": "Explain what `len(x)` returns in Python.", "input": "", "output": "It returns 3 for [1, 2, 3]."},
        {"instruction": "Open https://example.org and describe it.", "input": "", "output": "A placeholder page."},
        {"instruction": "Say hello.", "input": "", "output": "Hello there, friend."},
        {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."},
        {"instruction": "Add 2 and 2.", "input": "", "output": "The sum is 4."},
        # A code block alone on its lines is never sent to the translator: it survives a real (poor) translator.
        {"instruction": "Explain this code.", "input": CODE, "output": "It prints a greeting."},
    ]
    src = tmp_path / "pairs.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    out = tmp_path / "sx"
    recipe = _write(tmp_path / "sx.yaml", {
        "seed": 0, "output_dir": str(out), "num_shards": 2, "source": {"path": str(src)},
        "target_langs": ["eng_Latn", "fra_Latn"], "translator": _translator(stories260k, 12),
        "protect": {"terms": ["Python"]}, "nshot": {"n": 2, "selection": "random"},
    })
    assert main(["baseline", "sphinx", str(recipe), "--no-progress"]) == 0
    m = _manifest_adds_up(out)
    st = m["stages"]["translated/fr"]
    # The 260K model cannot copy ⟦n⟧: every example with a protected span is quarantined with the reason.
    assert st["reasons"]["quarantine"].get("placeholder_lost", 0) >= 3
    quarantined = {}
    for p in (out / "translated/fr/quarantine").glob("shard-*.jsonl"):
        for line in p.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            quarantined[obj["id"]] = obj
    assert {"pairs-0", "pairs-1", "pairs-4"} <= set(quarantined)
    assert all(q["_reason"] == "placeholder_lost" and "missing ⟦" in q["_detail"] for q in quarantined.values())
    for short in ("en", "fr"):
        for rec in _kept(out, short):
            text = json.dumps(rec.to_json(), ensure_ascii=False)
            assert "⟦" not in text  # never emitted broken
            assert rec.id not in rec.meta["nshot_ids"] and len(rec.meta["nshot_ids"]) == 2
            assert len(rec["messages"]) == 6 and rec["messages"][-2]["role"] == "user"
    fr = {r.id: r for r in _kept(out, "fr")}
    assert fr["pairs-5"]["messages"][-2]["content"].endswith("\n\n" + CODE)  # byte-for-byte through the translator
    assert fr["pairs-5"].meta["protected_spans"] == 1
    en = {r.id: r for r in _kept(out, "en")}
    assert len(en) == 6 and en["pairs-0"]["messages"][-2]["content"] == rows[0]["instruction"]
    _trl_ready(m, stories260k)


def _trl_ready(manifest: dict, model: Path) -> None:
    """The shards load with `datasets` as one table and render through a chat template with generation markers."""
    import datasets
    from transformers import AutoTokenizer

    ds = datasets.load_dataset("json", data_files=manifest["data_files"], split="train")
    assert len(ds) == manifest["total_records"] and "messages" in ds.column_names
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = CHAT_TEMPLATE
    for row in ds.select(range(min(3, len(ds)))):
        rendered = tok.apply_chat_template(row["messages"], tokenize=True, return_assistant_tokens_mask=True,
                                           return_dict=True)
        assert sum(rendered["assistant_masks"]) > 0


@pytest.mark.parametrize("selection", ["random", "similar"])
def test_nshot_never_includes_the_example_itself(selection):
    texts = ["Translate cat into French.", "Translate dog into French.", "What is 2 + 2?", "What is 3 + 3?",
             "Write a poem about the sea.", "Write a poem about the sky."]
    pool = [Record(f"s{i}", "eng_Latn", {"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"}]},
                   {"source_id": f"s{i}"}) for i, t in enumerate(texts)]
    # A duplicate of s0 under another id must not serve as its shot either.
    pool.append(Record("dup", "eng_Latn", {"messages": pool[0]["messages"]}, {"source_id": "dup"}))
    stage = NShotStage("n", pool, n=3, seed=1, selection=selection)
    for rec in pool:
        shots = stage.choose(rec)
        assert len(shots) == 3
        assert all(s.id != rec.id and s["messages"][0]["content"] != rec["messages"][0]["content"] for s in shots)
        assert [s.id for s in stage.choose(rec)] == [s.id for s in shots]  # deterministic per id
    if selection == "similar":
        assert stage.choose(pool[2])[0].id == "s3"  # "What is 2 + 2?" -> "What is 3 + 3?"


def test_read_records_round_trip_of_chat_records(tmp_path):
    # Chat records are plain mlift records: `messages` is a field, `meta` stays separate.
    from mlift.records import write_records

    rec = Record("a", "fra_Latn", {"messages": [{"role": "user", "content": "Bonjour"},
                                                 {"role": "assistant", "content": "Salut"}]}, {"k": 1})
    write_records(tmp_path / "x.jsonl", [rec])
    back = next(read_records(tmp_path / "x.jsonl"))
    assert back == rec
