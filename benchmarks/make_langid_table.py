"""Build mlift/resources/langid.tsv: for each of the 202 FLORES-200 codes, the label(s) of each packaged detector that
mean that language ("-" = the detector does not know it) and the detector `auto` uses.

Label sets are the detectors' documented lists: fastText lid.176 (the 176 labels of fasttext.cc/docs/en/language-
identification), lingua-language-detector 2.x (its 75 languages, read from the installed package), py3langid 0.4
(the 142 languages of its model, read from it). Run: python benchmarks/make_langid_table.py  (rewrites the TSV).
"""

from __future__ import annotations

from pathlib import Path

from mlift.languages import all_languages

LID176 = set("""af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy
da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo io
is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my
myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl
so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh""".split())

# FLORES code -> labels, where the ISO 639-1/-3 code of languages.tsv is not the detector's label: individual languages
# of a macrolanguage the detectors only know as a whole (Arabic varieties, Persian/Dari, Norwegian), and label clashes
# (lid.176's `als` is Alemannic, not Tosk Albanian).
MACRO = {
    "acm_Arab": "ar", "acq_Arab": "ar", "aeb_Arab": "ar", "ajp_Arab": "ar", "apc_Arab": "ar", "ars_Arab": "ar",
    "ary_Arab": "ar", "arz_Arab": "arz,ar", "prs_Arab": "fa", "nob_Latn": "no,nb", "nno_Latn": "nn,no",
    "als_Latn": "sq", "yue_Hant": "yue,zh", "zho_Hant": "zh", "zho_Hans": "zh", "azb_Arab": "azb",
    "ckb_Arab": "ckb", "ceb_Latn": "ceb", "ilo_Latn": "ilo", "war_Latn": "war", "ast_Latn": "ast", "lmo_Latn": "lmo",
    "scn_Latn": "scn", "vec_Latn": "vec", "mai_Deva": "mai", "min_Latn": "min", "srd_Latn": "sc", "kmr_Latn": "ku",
}
# Script variants the detectors were not trained on (their data for the language is in the other script): unknown.
OTHER_SCRIPT = {"ace_Arab", "bjn_Arab", "knc_Arab", "min_Arab", "taq_Tfng", "kas_Deva"}
# Measured (benchmarks/langid_compare.py): lid.176 drops single sentences of Yoruba (P(yo) ~0.1), Swahili and some
# Bokmal; the detectors named here keep them.
PREFER = {"yor_Latn": "py3langid", "swh_Latn": "py3langid", "nob_Latn": "py3langid"}
ORDER = ("lid176", "lingua", "py3langid")


def detector_labels() -> dict[str, set[str]]:
    from lingua import Language
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    lingua = {lang.iso_code_639_1.name.lower() for lang in Language.all()}
    return {"lid176": LID176, "lingua": lingua,
            "py3langid": set(LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).nb_classes)}


def labels_for(flores: str, iso1: str | None, known: set[str]) -> list[str]:
    if flores in OTHER_SCRIPT:
        return []
    if flores in MACRO:
        cands = MACRO[flores].split(",")
    else:
        cands = [c for c in (iso1, flores.split("_")[0]) if c]
    return [c for c in cands if c in known]


def main() -> None:
    known = detector_labels()
    rows = ["# flores\tlid176\tlingua\tpy3langid\tauto\t(made by benchmarks/make_langid_table.py; '-' = not known)"]
    for lang in all_languages():
        cells = {d: labels_for(lang.flores, lang.iso1, known[d]) for d in ORDER}
        auto = PREFER.get(lang.flores) or next((d for d in ORDER if cells[d]), "-")
        rows.append("\t".join([lang.flores, *[",".join(cells[d]) or "-" for d in ORDER], auto]))
    out = Path(__file__).resolve().parents[1] / "mlift" / "data" / "langid.tsv"
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    n = len(rows) - 1
    print(f"wrote {out}: {n} languages; auto: " + ", ".join(
        f"{d} {sum(r.split(chr(9))[4] == d for r in rows[1:])}" for d in (*ORDER, "-")))


if __name__ == "__main__":
    main()
