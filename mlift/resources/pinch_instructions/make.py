"""Writes mlift/resources/pinch_instructions/<flores>.jsonl: a tiny AlpacaFarm-style eval set (id, lang, instruction,
input) in the 12 Pinch languages, for tests and rehearsals. Real text in every language: for the 7 languages that
../shared's FLORES-200 devtest has, the inputs are its first two devtest sentences (CC BY-SA 4.0); for cs, et, fi,
he and it (not in ../shared) the sentences were written by hand. The instruction frames ("explain this sentence",
"give three tips for staying healthy" -- Alpaca's first instruction) were translated by hand.
    python mlift/resources/pinch_instructions/make.py [--flores ../shared/data/flores200/devtest]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent
# lang -> (explain frame, tips instruction, own sentences or None for FLORES)
TEXT = {
    "eng_Latn": ("Explain the following sentence in simple words.", "Give three tips for staying healthy.", None),
    "spa_Latn": ("Explica la siguiente oración con palabras sencillas.", "Da tres consejos para mantenerse saludable.", None),
    "rus_Cyrl": ("Объясни следующее предложение простыми словами.", "Дай три совета, как оставаться здоровым.", None),
    "zho_Hans": ("用简单的话解释下面这句话。", "给出三个保持健康的建议。", None),
    "arb_Arab": ("اشرح الجملة التالية بكلمات بسيطة.", "قدّم ثلاث نصائح للحفاظ على الصحة.", None),
    "hin_Deva": ("निम्नलिखित वाक्य को सरल शब्दों में समझाइए।", "स्वस्थ रहने के लिए तीन सुझाव दीजिए।", None),
    "swh_Latn": ("Eleza sentensi ifuatayo kwa maneno rahisi.", "Toa vidokezo vitatu vya kuwa na afya njema.", None),
    "ces_Latn": ("Vysvětli následující větu jednoduchými slovy.", "Uveď tři tipy, jak zůstat zdravý.",
                 ["Praha je hlavní město České republiky a leží na řece Vltavě.", "V zimě jsou dny kratší než v létě."]),
    "est_Latn": ("Selgita järgmist lauset lihtsate sõnadega.", "Anna kolm nõuannet, kuidas tervena püsida.",
                 ["Tallinn on Eesti pealinn ja asub Soome lahe ääres.", "Talvel on Eestis päevad lühikesed."]),
    "fin_Latn": ("Selitä seuraava lause yksinkertaisin sanoin.", "Anna kolme vinkkiä terveenä pysymiseen.",
                 ["Helsinki on Suomen pääkaupunki, ja se sijaitsee Itämeren rannalla.",
                  "Talvella päivät ovat Suomessa lyhyitä."]),
    "heb_Hebr": ("הסבר את המשפט הבא במילים פשוטות.", "תן שלושה טיפים לשמירה על הבריאות.",
                 ["ירושלים היא עיר עתיקה שיש בה אתרים היסטוריים רבים.", "בחורף הימים קצרים יותר מאשר בקיץ."]),
    "ita_Latn": ("Spiega la frase seguente con parole semplici.", "Dai tre consigli per restare in salute.",
                 ["Roma è la capitale d'Italia ed è famosa per la sua storia antica.",
                  "In inverno le giornate sono più corte che in estate."]),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flores", default=str(Path(__file__).resolve().parents[4] / "shared/data/flores200/devtest"))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for lang, (explain, tips, own) in TEXT.items():
        sentences = own or Path(args.flores, f"{lang}.devtest").read_text(encoding="utf-8").splitlines()[:2]
        rows = [{"id": f"tiny-{k}", "lang": lang, "instruction": explain, "input": s.strip()}
                for k, s in enumerate(sentences)]
        rows.append({"id": "tiny-2", "lang": lang, "instruction": tips, "input": ""})
        with open(OUT / f"{lang}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"wrote {len(TEXT)} files to {OUT}")


if __name__ == "__main__":
    main()
