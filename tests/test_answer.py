"""`mlift answer` (a model answers an instruction eval set per language) and the per-language judge against the
monolingual references (Pinch's evaluation), with the real 260K Llama as answerer and judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_train import base_recipe, make_mlift_dataset

from mlift.cli import main as cli_main
from mlift.judge.answer import SHIPPED, load_instructions
from mlift.judge.pairwise import aggregate, parse_verdict

PINCH = {"arb_Arab", "zho_Hans", "ces_Latn", "eng_Latn", "est_Latn", "fin_Latn", "heb_Hebr", "hin_Deva", "ita_Latn",
         "rus_Cyrl", "spa_Latn", "swh_Latn"}


def test_shipped_instructions_cover_the_12_pinch_languages() -> None:
    rows = load_instructions("shipped")
    assert {r["lang"] for r in rows} == PINCH and len(rows) == 36
    assert {p.stem for p in SHIPPED.glob("*.jsonl")} == PINCH
    assert all(r["instruction"] and r["id"] for r in rows)


@pytest.mark.parametrize("row,message", [
    ({"id": "1", "lang": "xx_Nope", "instruction": "Hi"}, "bad.jsonl:2: lang:"),
    ({"id": "1", "lang": "fra_Latn"}, "bad.jsonl:2: missing key 'instruction'"),
    ({"lang": "fra_Latn", "instruction": "Salut"}, "bad.jsonl:2: missing key 'id'"),
])
def test_bad_instructions_exit_2_naming_file_line_and_key(tmp_path: Path, capsys, row: dict, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "0", "lang": "fra_Latn", "instruction": "Bonjour"}) + "\n" + json.dumps(row) + "\n")
    assert cli_main(["answer", "--model", "unused", "--instructions", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_a_file_named_for_a_language_holds_only_that_language(tmp_path: Path, capsys) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "fra_Latn.jsonl").write_text(json.dumps({"id": "0", "lang": "hin_Deva", "instruction": "x"}) + "\n")
    assert cli_main(["answer", "--model", "unused", "--instructions", str(tmp_path / "d"), "--out", str(tmp_path)]) == 2
    assert "fra_Latn.jsonl:1: lang 'hin_Deva' in a file named for fra_Latn" in capsys.readouterr().err


def test_judge_per_language_pairs_with_its_own_reference(tmp_path: Path) -> None:
    """Ids repeat across languages; each language is compared with its reference only; no reference -> not judged."""
    from mlift.judge.pairwise import JudgeRecipe, build_pairs

    def write(path: Path, rows: list[tuple[str, str, str]]) -> str:
        path.write_text("".join(json.dumps({"id": i, "lang": lang, "instruction": "q", "response": r}) + "\n"
                                for i, lang, r in rows))
        return str(path)

    a = write(tmp_path / "a.jsonl", [("1", "fr", "a-fr-1"), ("2", "fr", "a-fr-2"), ("1", "hi", "a-hi-1"),
                                     ("1", "sw", "a-sw-1")])
    ref_fr = write(tmp_path / "mono-fr.jsonl", [("1", "fra_Latn", "m-fr-1"), ("2", "fra_Latn", "m-fr-2"),
                                                ("1", "hin_Deva", "WRONG")])
    ref_hi = write(tmp_path / "mono-hi.jsonl", [("1", "hin_Deva", "m-hi-1")])
    cfg = JudgeRecipe(output_dir=str(tmp_path), model_a={"path": a},
                      reference_by_lang={"fra_Latn": {"path": ref_fr}, "hi": {"path": ref_hi}},
                      judge={"backend": "transformers", "model": "unused"})
    got = {(p.lang, p.id): (p.response_a, p.response_b, p.model_b) for p in build_pairs(cfg)}
    assert got == {("fra_Latn", "1"): ("a-fr-1", "m-fr-1", "mono-fr"), ("fra_Latn", "2"): ("a-fr-2", "m-fr-2", "mono-fr"),
                   ("hin_Deva", "1"): ("a-hi-1", "m-hi-1", "mono-hi")}
    with pytest.raises(ValueError, match="exactly one of model_b or reference_by_lang"):
        JudgeRecipe(output_dir=str(tmp_path), model_a={"path": a}, judge={"backend": "transformers", "model": "x"})


def test_score_pct_is_the_papers_percent_with_50_as_parity() -> None:
    def rows(*verdicts):
        return [{"lang": lang, "verdict_ab": a, "verdict_ba": b, "excluded": None if a and b else "unparsed"}
                for lang, a, b in verdicts]

    table = aggregate(rows(("fi", "A", "B"), ("fi", "B", "A"), ("he", "A", "A"), ("he", None, "B")))
    assert table["fi"]["score_pct"] == 50.0 and table["fi"]["win"] == 1 and table["fi"]["loss"] == 1
    assert table["he"]["score_pct"] == 50.0 and table["he"]["tie"] == 1 and table["he"]["unparsed"] == 1
    assert aggregate(rows(*[("fi", "A", "B")] * 2, ("fi", "B", "B"), ("fi", "B", "A")))["fi"]["score_pct"] == 62.5


def test_answer_with_adapter_then_judge_against_monolingual_references(tmp_path: Path, stories260k: Path) -> None:
    """A real LoRA adapter trained by mlift.train.sft answers through the chat template it was saved with; the base model's
    answers, split per language, are the references; the 260K Llama judges both orders."""
    from mlift.train.sft import load_train_recipe, train

    data = make_mlift_dataset(tmp_path / "data", n=16)
    out = tmp_path / "adapter"
    recipe = tmp_path / "train.yaml"
    recipe.write_text(yaml.safe_dump(base_recipe(stories260k, data, out, max_steps=4, learning_rate=5e-2)))
    train(load_train_recipe(recipe))
    langs = ["fin_Latn", "heb_Hebr"]
    common = ["--langs", *langs, "--max-new-tokens", "8", "--device", "cpu", "--no-progress"]
    assert cli_main(["answer", "--model", str(stories260k), "--adapter", str(out), "--out", str(tmp_path / "ans-a"),
                     *common]) == 0
    assert cli_main(["answer", "--model", str(stories260k), "--out", str(tmp_path / "ans-base"), *common]) == 0
    man = json.loads((tmp_path / "ans-a" / "manifest.json").read_text())
    assert man["tokenizer"] == str(out) and man["chat_template_source"] == "tokenizer" and man["seed"] == 0
    assert len(man["chat_template_sha256"]) == 64 and man["answered"] == {"fin_Latn": 3, "heb_Hebr": 3}
    rows_a = [json.loads(x) for x in (tmp_path / "ans-a" / "answers.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (tmp_path / "ans-base" / "answers.jsonl").read_text().splitlines()]
    assert set(rows_a[0]) == {"id", "lang", "instruction", "response"}
    assert [r["response"] for r in rows_a] != [r["response"] for r in rows_b], "the adapter changes the answers"
    refs = {}
    for lang in langs:
        path = tmp_path / f"mono-{lang}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows_b if r["lang"] == lang))
        refs[lang] = {"path": str(path), "name": f"mono-{lang}"}
    judge = tmp_path / "judge.yaml"
    judge.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "judged"), "model_a": {"path": str(tmp_path / "ans-a" / "answers.jsonl"),
                                                             "name": "pinch"},
        "reference_by_lang": refs, "chat": False, "max_excluded_rate": 1.0,  # the 260K judge: plumbing only
        "judge": {"backend": "transformers", "model": str(stories260k), "device": "cpu", "batch_size": 12,
                  "params": {"max_new_tokens": 4}}}))
    assert cli_main(["judge", str(judge), "--no-progress"]) == 0
    judged = [json.loads(x) for x in (tmp_path / "judged" / "judgments.jsonl").read_text().splitlines()]
    assert sorted((r["lang"], r["model_b"]) for r in judged) == sorted((lang, f"mono-{lang}") for lang in langs
                                                                        for _ in range(3))
    scores = json.loads((tmp_path / "judged" / "scores.json").read_text())
    assert scores["references"] == {lang: f"mono-{lang}" for lang in langs}
    assert scores["scores"] == aggregate([{**r, "verdict_ab": parse_verdict(r["judge_ab"]),
                                           "verdict_ba": parse_verdict(r["judge_ba"])} for r in judged])
