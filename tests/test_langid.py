"""Language ID keeps every language's real text or says it cannot: FLORES-200 devtest sentences in ../shared pass the
fragments stage's check (>= 95% for every language its detector knows), Traditional Chinese and Bokmal are kept,
languages no detector knows are a recipe error until the recipe chooses, and a language that loses everything fails
the run loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlift.generate.config import FragmentsConfig
from mlift.generate.fragments import FragmentStage, check_languages
from mlift.langid import LanguageCheck, UnsupportedLanguage, rules, script_ok
from mlift.languages import all_languages, get_language
from mlift.recipe import RecipeError
from mlift.records import Record

WRITTEN = json.loads((Path(__file__).parent / "data" / "written_sentences.json").read_text(encoding="utf-8"))


def _kept(lang: str, lines: list[str], **langid) -> float:
    """% of the sentences, each a document, that the real fragments stage keeps (length bounds out of the way)."""
    cfg = FragmentsConfig(min_tokens=1, max_tokens=10_000, max_sentences=100, min_alpha_frac=0.0,
                          langid={"min_score": 0.5, **langid})
    stage = FragmentStage(cfg, lang)
    docs = [Record(id=f"{lang}-{i}", lang=lang, fields={"text": s}) for i, s in enumerate(lines)]
    kept = {o.record.id.split("#")[0] for o in stage.process(docs) if o.kind == "keep"}
    return 100 * len(kept) / len(lines)


def test_table_covers_all_flores_codes():
    table = rules()
    codes = {lang.flores for lang in all_languages()}
    assert len(codes) == 202 and set(table) == codes
    assert table["zho_Hant"].labels["lid176"] == ("zh",) and "no" in table["nob_Latn"].labels["lid176"]
    assert table["als_Latn"].labels["lid176"] == ("sq",)  # lid.176's `als` is Alemannic
    unknown = [c for c, r in table.items() if r.auto == "-"]
    assert "tir_Ethi" in unknown and all(not any(table[c].labels.values()) for c in unknown)


def test_flores_devtest_kept_or_flagged(shared_dir):
    files = sorted((shared_dir / "data" / "flores200" / "devtest").glob("*.devtest"))
    assert len(files) >= 10
    for f in files:
        lines = f.read_text(encoding="utf-8").splitlines()
        try:
            pct = _kept(f.stem, lines)
        except RecipeError as exc:  # not supported by any packaged detector: flagged, never silently dropped
            assert "per_language" in str(exc)
            continue
        assert pct >= 95, f"{f.stem}: {pct:.1f}% of FLORES devtest kept"


def test_traditional_chinese_kept_simplified_rejected(shared_dir):
    from opencc import OpenCC

    hans = (shared_dir / "data" / "flores200" / "devtest" / "zho_Hans.devtest").read_text(encoding="utf-8").splitlines()
    hans = hans[:300]  # OpenCC (pure Python) is slow; 300 lines keep the test short
    hant = [OpenCC("s2t").convert(x) for x in hans]
    assert _kept("zho_Hant", hant) >= 95
    assert _kept("zho_Hans", hans) >= 95
    assert _kept("zho_Hant", hans) < 20  # the script check separates them: the detector alone says zh for both
    assert _kept("zho_Hans", hant) < 20


@pytest.mark.parametrize("lang", ["nob_Latn", "yor_Latn", "kor_Hang", "tha_Thai", "khm_Khmr", "mya_Mymr", "amh_Ethi",
                                  "hye_Armn", "lao_Laoo", "ben_Beng", "ell_Grek", "heb_Hebr", "kat_Geor"])
def test_written_sentences_kept(lang):
    assert _kept(lang, WRITTEN[lang]) >= 90, lang  # 8-12 sentences each: at most one miss


def test_yoruba_and_swahili_need_their_measured_detector(shared_dir):
    swh = (shared_dir / "data" / "flores200" / "devtest" / "swh_Latn.devtest").read_text(encoding="utf-8").splitlines()
    assert _kept("swh_Latn", swh[:200], detector="lid176") < 60  # lid.176 on single Swahili sentences
    assert _kept("swh_Latn", swh[:200]) >= 95  # the table's choice
    assert _kept("yor_Latn", WRITTEN["yor_Latn"], detector="lid176") < 50
    assert _kept("yor_Latn", WRITTEN["yor_Latn"]) >= 90


def test_other_language_rejected(shared_dir):
    dev = shared_dir / "data" / "flores200" / "devtest"
    fra = (dev / "fra_Latn.devtest").read_text(encoding="utf-8").splitlines()[:100]
    rus = (dev / "rus_Cyrl.devtest").read_text(encoding="utf-8").splitlines()[:100]
    assert _kept("spa_Latn", fra) <= 5 and _kept("deu_Latn", fra) <= 5
    assert _kept("ukr_Cyrl", rus) <= 10
    assert _kept("nob_Latn", WRITTEN["yor_Latn"]) == 0


def test_unsupported_language_is_a_choice():
    with pytest.raises(RecipeError, match=r"tir_Ethi.*per_language"):
        check_languages(FragmentsConfig(), ["fr", "tir_Ethi", "sat_Olck"])
    with pytest.raises(UnsupportedLanguage):
        LanguageCheck("tir_Ethi")
    assert check_languages(FragmentsConfig(langid={"unsupported": "script"}), ["fr", "tir_Ethi"]) == \
        {"fra_Latn": "lid176", "tir_Ethi": "script"}
    cfg = FragmentsConfig(langid={"per_language": {"tir_Ethi": "none", "fr": "py3langid"}})
    assert check_languages(cfg, ["fr", "tir_Ethi"]) == {"fra_Latn": "py3langid", "tir_Ethi": "none"}
    # script-only check: Ethiopic text passes, Latin text does not
    tigrinya = "ኣስመራ ርእሰ ከተማ ኤርትራ እያ።"  # written for this test (short Tigrinya sentence)
    chk = LanguageCheck("tir_Ethi", unsupported="script")
    assert chk.check(tigrinya)[0] and not chk.check("Asmara is the capital of Eritrea.")[0]


def test_script_check():
    assert script_ok("Привет, как дела?", get_language("rus_Cyrl"), 0.5)[0]
    assert not script_ok("Privet, kak dela?", get_language("rus_Cyrl"), 0.5)[0]
    assert script_ok("東京は日本の首都です。", get_language("jpn_Jpan"), 0.5)[0]
    assert not script_ok("这是简体中文的句子，说明问题。", get_language("zho_Hant"), 0.5)[0]
    assert script_ok("這是繁體中文的句子，說明問題。", get_language("zho_Hant"), 0.5)[0]


def _recipe(tmp_path, langs, text_by_lang, **langid):
    import yaml

    for lang, lines in text_by_lang.items():
        (tmp_path / f"{lang}.jsonl").write_text("\n".join(json.dumps({"text": x}) for x in lines) + "\n", encoding="utf-8")
    r = {"output_dir": str(tmp_path / "out"), "num_shards": 2, "languages": langs,
         "sources": [{"kind": "jsonl", "path": str(tmp_path) + "/{flores}.jsonl"}],
         "fragments": {"min_tokens": 3, "langid": langid},
         "translator": {"kind": "seq2seq", "model": "unused"}, "instruct": {"llm": {"backend": "transformers", "model": "unused"}}}
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(r), encoding="utf-8")
    return p


def test_language_that_loses_everything_fails_the_run(tmp_path, capsys, shared_dir):
    from mlift.cli import main

    dev = shared_dir / "data" / "flores200" / "devtest"
    fra = (dev / "fra_Latn.devtest").read_text(encoding="utf-8").splitlines()[:20]
    # German is given French text: language ID drops all of it, and the run says so and exits 1.
    recipe = _recipe(tmp_path, ["fra_Latn", "deu_Latn"], {"fra_Latn": fra, "deu_Latn": fra})
    assert main(["generate", str(recipe), "--stage", "fragments", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "deu_Latn: no fragment kept" in err and "lang_id 20" in err and "everything was dropped for ['deu_Latn']" in err
    assert "fra_Latn" not in err.split("everything was dropped")[1]


def test_unsupported_language_stops_before_the_run(tmp_path, capsys):
    from mlift.cli import main

    recipe = _recipe(tmp_path, ["tir_Ethi"], {"tir_Ethi": ["ኣስመራ ርእሰ ከተማ ኤርትራ እያ። ብዙሓት ሰባት ኣብኡ ይነብሩ።"]})
    assert main(["generate", str(recipe), "--stage", "fragments", "--no-progress"]) == 2
    assert "tir_Ethi" in capsys.readouterr().err and not (tmp_path / "out").exists()
    recipe = _recipe(tmp_path, ["tir_Ethi"], {"tir_Ethi": ["ኣስመራ ርእሰ ከተማ ኤርትራ እያ። ብዙሓት ሰባት ኣብኡ ይነብሩ።"]},
                     per_language={"tir_Ethi": "script"})
    assert main(["generate", str(recipe), "--stage", "fragments", "--no-progress"]) == 0
