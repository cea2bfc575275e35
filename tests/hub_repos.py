"""Build small git repositories laid out like the real Hugging Face hub repositories that mlift's recipes name, for a
local Hub server (olah, `mirrors-path = [OUT]`) to serve: `OUT/datasets/<org>/<name>`, `OUT/models/<org>/<name>`.

    python tests/hub_repos.py OUT [--shared ../shared]     # builds them and prints each repo's files

Rows come from ../shared (real XL-Sum, FLORES-200, MMLU, Okapi m_MMLU, Alpaca, UDHR), never written by hand; where the
real text of a repo is not at hand the stand-in is named in LAYOUTS. No mlift import: a user can run it anywhere to see
the layout a mirror must have. Big files are plain git blobs (olah serves them as such; LFS pointers also work when
the LFS objects are under the repo's .git/lfs/objects).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

# What each repo is and where it differs from the real one (the test report lists these).
LAYOUTS = {
    "datasets/csebuetnlp/xlsum": "main: the script-free copy a mirror must hold (the real main is a loading script that "
    "datasets>=4 refuses): the parquet export's layout <config>/<split>/0000.parquet plus a README `configs:` block; "
    "refs/convert/parquet: the real export (same files, no README). olah 0.5.4 cannot serve a revision with slashes "
    "(it routes on the decoded path: resolve/refs%2Fconvert%2Fparquet/... -> commit 'refs', 401).",
    "datasets/openlanguagedata/flores_plus": "one config per language (Chinese cmn_Hans), dev/<code>.parquet and "
    "devtest/<code>.parquet; devtest = the real FLORES-200 devtest; dev: ../shared has no dev split, so it holds the "
    "last 16 devtest sentences (a stand-in).",
    "datasets/CohereForAI/Global-MMLU": "<lang>/{test,dev}-00000-of-00001.parquet with Global-MMLU's columns; en from "
    "the real MMLU CSVs (2 test questions per subject, the 5 dev ones), other languages from Okapi m_MMLU (real "
    "translated MMLU: test <- its val, dev <- its dev; subject from the Okapi id). Also as CohereLabs/Global-MMLU.",
    "datasets/alexandrainst/m_mmlu": "<lang>/{train,val,test}-00000-of-00001.parquet; train <- Okapi dev, val and test "
    "<- Okapi val (../shared has no Okapi test split).",
    "datasets/uonlp/CulturaX": "<iso1>/<iso1>_part_0000{0,1}.parquet (text, timestamp, url, source), a config per "
    "language; text: UDHR paragraphs (a real monolingual corpus, not web crawl).",
    "datasets/tatsu-lab/alpaca": "data/train-00000-of-00001.parquet (instruction, input, output, text): the first 100 "
    "real Stanford Alpaca examples.",
    "datasets/MBZUAI/Bactrian-X": "<lang>/train-00000-of-00001.parquet (instruction, input, id, output): en <- Stanford "
    "Alpaca (first 100), zh <- alpaca_zh_demo (real Chinese Alpaca-style data, not Bactrian-X's translations).",
    "datasets/databricks/databricks-dolly-15k": "databricks-dolly-15k.jsonl (instruction, context, response, "
    "category): Dolly's text is not at hand; the rows are Alpaca's (instruction, input -> context, output -> response).",
    "datasets/facebook/xnli": "<lang>/{train,validation,test}-00000-of-00001.parquet (premise, hypothesis, label), a "
    "config per language. XNLI's text is not at hand: premise and hypothesis are consecutive FLORES-200 sentences, "
    "label 1 (neutral) for all: a stand-in for the layout, not annotations.",
    "datasets/google-research-datasets/paws-x": "<lang>/{train,validation,test}-00000-of-00001.parquet (id, "
    "sentence1, sentence2, label). Stand-in: consecutive FLORES-200 sentences, label 0 (not paraphrases).",
    "datasets/google-research-datasets/tydiqa": "secondary_task/{train,validation}-00000-of-00001.parquet (id, title, "
    "context, question, answers{text, answer_start}), ids '<language>-...'. Stand-in: XL-Sum articles as contexts, "
    "their titles as questions, the first sentence as the answer span.",
    "models/mlift-test/stories260K": "the pretrained 260K Llama of ../shared/models/stories260K, files as they are.",
}

XLSUM = {"arabic", "chinese_simplified", "english", "french", "hindi", "japanese", "russian", "spanish", "swahili"}
FLORES = {"arb_Arab": "arb_Arab", "deu_Latn": "deu_Latn", "eng_Latn": "eng_Latn", "fra_Latn": "fra_Latn",
          "hin_Deva": "hin_Deva", "jpn_Jpan": "jpn_Jpan", "rus_Cyrl": "rus_Cyrl", "spa_Latn": "spa_Latn",
          "swh_Latn": "swh_Latn", "zho_Hans": "cmn_Hans"}  # FLORES-200 file -> FLORES+ config
UDHR = {"ar": "arb", "de": "deu", "en": "eng", "es": "spa", "fr": "fra", "hi": "hin", "ja": "jpn", "ru": "rus",
        "sw": "swh", "zh": "cmn_hans"}  # CulturaX config (ISO 639-1) -> ../shared/data/udhr file
ALPACA_PROMPT = ("Below is an instruction that describes a task{ctx}. Write a response that appropriately completes "
                 "the request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n{output}")


def parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def card(configs: list[dict[str, Any]], title: str, extra: str = "") -> str:
    """A dataset card whose YAML declares the configs, as real parquet-only repos do."""
    import yaml

    head = yaml.safe_dump({"configs": configs}, sort_keys=False, allow_unicode=True)
    return f"---\n{head}---\n# {title}\n\nA small local copy for tests (tests/hub_repos.py). {extra}\n"


def git_repo(path: Path, files: dict[str, bytes | str], message: str = "Upload") -> Path:
    """A git repository with `files` committed on branch main (a fresh one: an old copy is replaced)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _commit(path, files, message)
    return path


def _git(path: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "mlift-tests", "GIT_AUTHOR_EMAIL": "tests@mlift", "GIT_COMMITTER_NAME": "mlift-tests",
           "GIT_COMMITTER_EMAIL": "tests@mlift", "PATH": "/usr/bin:/bin:/usr/local/bin",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(path)}
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True, env=env).stdout


def _commit(path: Path, files: dict[str, bytes | str], message: str) -> None:
    for name, data in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", message)


def add_ref(path: Path, ref: str, files: dict[str, bytes | str], message: str) -> None:
    """Commit `files` (alone, an orphan tree) under `ref` (e.g. refs/convert/parquet), leaving main checked out."""
    _git(path, "checkout", "-q", "--orphan", "_tmp")
    _git(path, "rm", "-rq", "--cached", ".")
    for p in path.iterdir():
        if p.name != ".git":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    _commit(path, files, message)
    _git(path, "update-ref", ref, "HEAD")
    _git(path, "checkout", "-q", "-f", "main")
    _git(path, "branch", "-q", "-D", "_tmp")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


# ---------------------------------------------------------------- datasets

def xlsum(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for lang in sorted(XLSUM):
        splits = []
        for split, local in (("train", "train"), ("test", "test"), ("validation", "val")):
            src = shared / "data" / "xlsum" / f"{lang}_{local}.jsonl"
            rows = [{k: r[k] for k in ("id", "url", "title", "summary", "text")} for r in _jsonl(src)]
            files[f"{lang}/{split}/0000.parquet"] = parquet(rows)
            splits.append({"split": split, "path": f"{lang}/{split}/*.parquet"})
        configs.append({"config_name": lang, "data_files": splits})
    export = dict(files)
    files["README.md"] = card(configs, "XL-Sum (script-free copy)", LAYOUTS["datasets/csebuetnlp/xlsum"])
    repo = git_repo(out / "datasets" / "csebuetnlp" / "xlsum", files)
    add_ref(repo, "refs/convert/parquet", export, "Update parquet files")
    return repo


def flores_plus(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for local, code in sorted(FLORES.items(), key=lambda kv: kv[1]):
        lines = (shared / "data" / "flores200" / "devtest" / f"{local}.devtest").read_text(encoding="utf-8")
        lines = lines.rstrip("\n").split("\n")
        iso3, script = code.split("_")

        def rows(sents: list[str], first_id: int, iso3: str = iso3, script: str = script) -> list[dict]:
            return [{"id": first_id + i, "iso_639_3": iso3, "iso_15924": script, "glottocode": None, "text": s,
                     "url": None, "domain": None, "topic": None, "has_image": None, "has_hyperlink": None,
                     "last_updated": "2.0"} for i, s in enumerate(sents)]

        files[f"devtest/{code}.parquet"] = parquet(rows(lines, 0))
        files[f"dev/{code}.parquet"] = parquet(rows(lines[-16:], 0))
        configs.append({"config_name": code, "data_files": [{"split": "dev", "path": f"dev/{code}.parquet"},
                                                             {"split": "devtest", "path": f"devtest/{code}.parquet"}]})
    files["README.md"] = card(configs, "FLORES+", LAYOUTS["datasets/openlanguagedata/flores_plus"])
    return git_repo(out / "datasets" / "openlanguagedata" / "flores_plus", files)


def _okapi(shared: Path, lang: str, split: str) -> list[dict]:
    return json.loads((shared / "data" / "m_mmlu" / f"{lang}_{split}.json").read_text(encoding="utf-8"))


def _okapi_langs(shared: Path) -> list[str]:
    return sorted({p.name.split("_")[0] for p in (shared / "data" / "m_mmlu").glob("*_val.json")})


def global_mmlu(out: Path, shared: Path) -> list[Path]:
    def row(sample_id: str, subject: str, q: str, opts: list[str], answer: str) -> dict:
        return {"sample_id": sample_id, "subject": subject, "subject_category": None, "question": q,
                **{f"option_{c}": o for c, o in zip("abcd", opts)}, "answer": answer, "required_knowledge": None,
                "time_sensitive": None, "reference": None, "culture": None, "region": None, "country": None,
                "cultural_sensitivity_label": "UNK", "is_annotated": False}

    def mmlu_csv(split: str, per_subject: int) -> list[dict]:
        rows = []
        for path in sorted((shared / "data" / "mmlu" / split).glob(f"*_{split}.csv")):
            subject = path.stem.rsplit("_", 1)[0]
            with path.open(encoding="utf-8", newline="") as f:
                for i, r in enumerate(list(csv.DictReader(f))[:per_subject]):
                    ans = r["answer"].strip()
                    letter = ans.upper() if ans.upper() in "ABCD" else "ABCD"[int(ans)]
                    rows.append(row(f"{subject}/{split}/{i}", subject, r["question"],
                                    [r[f"choice{k}"] for k in range(4)], letter))
        return rows

    def okapi(lang: str, split: str) -> list[dict]:
        return [row(r["id"], r["id"].split("/")[0], r["instruction"], [r[f"option_{c}"] for c in "abcd"],
                    r["answer"]) for r in _okapi(shared, lang, split)]

    files: dict[str, bytes | str] = {}
    configs = []
    for lang in sorted(set(_okapi_langs(shared)) | {"en"}):
        test, dev = (mmlu_csv("test", 2), mmlu_csv("dev", 5)) if lang == "en" else (okapi(lang, "val"),
                                                                                     okapi(lang, "dev"))
        files[f"{lang}/test-00000-of-00001.parquet"] = parquet(test)
        files[f"{lang}/dev-00000-of-00001.parquet"] = parquet(dev)
        configs.append({"config_name": lang, "data_files": [{"split": "test", "path": f"{lang}/test-*"},
                                                            {"split": "dev", "path": f"{lang}/dev-*"}]})
    files["README.md"] = card(configs, "Global-MMLU", LAYOUTS["datasets/CohereForAI/Global-MMLU"])
    # the hub renamed CohereForAI to CohereLabs (the old name redirects): lm-eval uses the old one
    return [git_repo(out / "datasets" / org / "Global-MMLU", files) for org in ("CohereForAI", "CohereLabs")]


def m_mmlu(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for lang in _okapi_langs(shared):
        splits = []
        for split, local in (("train", "dev"), ("val", "val"), ("test", "val")):
            files[f"{lang}/{split}-00000-of-00001.parquet"] = parquet(_okapi(shared, lang, local))
            splits.append({"split": split, "path": f"{lang}/{split}-*"})
        configs.append({"config_name": lang, "data_files": splits})
    files["README.md"] = card(configs, "Okapi m_MMLU", LAYOUTS["datasets/alexandrainst/m_mmlu"])
    return git_repo(out / "datasets" / "alexandrainst" / "m_mmlu", files)


def culturax(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for lang, udhr in sorted(UDHR.items()):
        paras = [p for p in (shared / "data" / "udhr" / f"{udhr}.txt").read_text(encoding="utf-8").split("\n")
                 if p.strip()]
        half = len(paras) // 2
        for part, chunk in enumerate((paras[:half], paras[half:])):
            rows = [{"text": t, "timestamp": None, "url": f"udhr://{udhr}/{part}/{i}", "source": "udhr"}
                    for i, t in enumerate(chunk)]
            files[f"{lang}/{lang}_part_{part:05d}.parquet"] = parquet(rows)
        configs.append({"config_name": lang, "data_files": f"{lang}/*.parquet"})
    files["README.md"] = card(configs, "CulturaX", LAYOUTS["datasets/uonlp/CulturaX"])
    return git_repo(out / "datasets" / "uonlp" / "CulturaX", files)


def _alpaca_rows(shared: Path, name: str = "alpaca_tiny.json") -> list[dict]:
    return json.loads((shared / "data" / "alpaca" / name).read_text(encoding="utf-8"))


def alpaca(out: Path, shared: Path) -> Path:
    rows = []
    for r in _alpaca_rows(shared):
        ctx = ", paired with an input that provides further context" if r["input"] else ""
        inp = f"### Input:\n{r['input']}\n\n" if r["input"] else ""
        rows.append({"instruction": r["instruction"], "input": r["input"], "output": r["output"],
                     "text": ALPACA_PROMPT.format(ctx=ctx, instruction=r["instruction"], input=inp, output=r["output"])})
    files = {"data/train-00000-of-00001.parquet": parquet(rows),
             "README.md": card([{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
                               "Stanford Alpaca", LAYOUTS["datasets/tatsu-lab/alpaca"])}
    return git_repo(out / "datasets" / "tatsu-lab" / "alpaca", files)


def bactrian_x(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for lang, name in (("en", "alpaca_tiny.json"), ("zh", "alpaca_zh_demo.json")):
        rows = [{"instruction": r["instruction"], "input": r["input"], "id": str(i), "output": r["output"]}
                for i, r in enumerate(_alpaca_rows(shared, name))]
        files[f"{lang}/train-00000-of-00001.parquet"] = parquet(rows)
        configs.append({"config_name": lang, "data_files": [{"split": "train", "path": f"{lang}/train-*"}]})
    files["README.md"] = card(configs, "Bactrian-X", LAYOUTS["datasets/MBZUAI/Bactrian-X"])
    return git_repo(out / "datasets" / "MBZUAI" / "Bactrian-X", files)


def dolly(out: Path, shared: Path) -> Path:
    rows = [{"instruction": r["instruction"], "context": r["input"], "response": r["output"], "category": "open_qa"}
            for r in _alpaca_rows(shared)]
    files = {"databricks-dolly-15k.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
             "README.md": "---\nlicense: cc-by-sa-3.0\n---\n# databricks-dolly-15k\n\n"
                          + LAYOUTS["datasets/databricks/databricks-dolly-15k"] + "\n"}
    return git_repo(out / "datasets" / "databricks" / "databricks-dolly-15k", files)


def _flores_lines(shared: Path, code: str) -> list[str]:
    text = (shared / "data" / "flores200" / "devtest" / f"{code}.devtest").read_text(encoding="utf-8")
    return text.rstrip("\n").split("\n")


# the templated baseline's other sources (facebook/xnli, paws-x: <iso1> configs; tydiqa: one config, all languages)
XNLI = {"ar": "arb_Arab", "de": "deu_Latn", "en": "eng_Latn", "es": "spa_Latn", "fr": "fra_Latn", "hi": "hin_Deva",
        "ru": "rus_Cyrl", "sw": "swh_Latn", "zh": "zho_Hans"}
PAWSX = {"de": "deu_Latn", "en": "eng_Latn", "es": "spa_Latn", "fr": "fra_Latn", "ja": "jpn_Jpan", "zh": "zho_Hans"}
TYDIQA = ("arabic", "english", "russian", "swahili")
SPLITS3 = ((0, "train"), (1, "validation"), (2, "test"))


def _pairs(out: Path, shared: Path, repo: str, langs: dict[str, str], row) -> Path:
    files: dict[str, bytes | str] = {}
    configs = []
    for lang, code in sorted(langs.items()):
        lines = _flores_lines(shared, code)
        splits = []
        for k, split in SPLITS3:
            rows = [row(lang, split, i, lines[2 * i + 40 * k], lines[2 * i + 40 * k + 1]) for i in range(12)]
            files[f"{lang}/{split}-00000-of-00001.parquet"] = parquet(rows)
            splits.append({"split": split, "path": f"{lang}/{split}-*"})
        configs.append({"config_name": lang, "data_files": splits})
    files["README.md"] = card(configs, repo, LAYOUTS[f"datasets/{repo}"])
    return git_repo(out / "datasets" / repo, files)


def xnli(out: Path, shared: Path) -> Path:
    return _pairs(out, shared, "facebook/xnli", XNLI,
                  lambda lang, split, i, a, b: {"premise": a, "hypothesis": b, "label": 1})


def paws_x(out: Path, shared: Path) -> Path:
    return _pairs(out, shared, "google-research-datasets/paws-x", PAWSX,
                  lambda lang, split, i, a, b: {"id": i, "sentence1": a, "sentence2": b, "label": 0})


def tydiqa(out: Path, shared: Path) -> Path:
    files: dict[str, bytes | str] = {}
    for split, local in (("train", "train"), ("validation", "val")):
        rows = []
        for lang in TYDIQA:
            for i, r in enumerate(_jsonl(shared / "data" / "xlsum" / f"{lang}_{local}.jsonl")):
                answer = r["text"].split(". ")[0]
                rows.append({"id": f"{lang}-{r['id']}-{i}", "title": r["title"], "context": r["text"],
                             "question": r["title"], "answers": {"text": [answer], "answer_start": [0]}})
        files[f"secondary_task/{split}-00000-of-00001.parquet"] = parquet(rows)
    configs = [{"config_name": "secondary_task", "data_files": [{"split": s, "path": f"secondary_task/{s}-*"}
                                                                for s in ("train", "validation")]}]
    files["README.md"] = card(configs, "TyDi QA", LAYOUTS["datasets/google-research-datasets/tydiqa"])
    return git_repo(out / "datasets" / "google-research-datasets" / "tydiqa", files)


# ---------------------------------------------------------------- models

def model_repo(out: Path, repo_id: str, local_dir: Path, readme: str | None = None) -> Path:
    """Publish any local model directory (config, weights, tokenizer files) as the model repo `repo_id`; hidden
    files (a builder's .complete marker) stay out, as on the hub."""
    files: dict[str, bytes | str] = {str(p.relative_to(local_dir)): p.read_bytes() for p in sorted(local_dir.rglob("*"))
                                     if p.is_file() and not p.relative_to(local_dir).as_posix().startswith(".")}
    return git_repo(out / "models" / repo_id, files if readme is None else {**files, "README.md": readme})


# The real model ids whose tokenizers tests/real_tokenizers.py rebuilds (the recipes train meta-llama/Llama-3.1-8B
# and generate with Qwen/Qwen2.5-7B-Instruct); published on demand, each family's build costs ~30 s once.
FAMILY_REPOS = {
    "llama-3.1-base": "meta-llama/Llama-3.1-8B",
    "llama-3.1-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "qwen2.5-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "qwen3": "Qwen/Qwen3-8B",
    "mistral-7b-instruct-v0.2": "mistralai/Mistral-7B-Instruct-v0.2",
    "mistral-large-2407": "mistralai/Mistral-Large-Instruct-2407",
    "gemma-3": "google/gemma-3-270m-it",
}
LAYOUTS.update({f"models/{repo}": f"a tiny random stand-in (one layer, hidden 32) with the real tokenizer files of "
                f"{family} (vocabulary, chat template, EOS; tests/real_tokenizers.py), not the real weights."
                for family, repo in FAMILY_REPOS.items()})


def family_repo(out: Path, family: str, local_dir: Path) -> Path:
    """Publish tests/real_tokenizers.py's build of `family` under its real model id, its README saying what it is."""
    repo_id = FAMILY_REPOS[family]
    readme = (f"---\nlibrary_name: transformers\n---\n# {repo_id} (tiny stand-in)\n\n"
              f"This repository is {LAYOUTS['models/' + repo_id]} Built by tests/real_tokenizers.py ({family}); where its tokenizer "
              "differs from the real repo's is said in that file's docstring.\n")
    return model_repo(out, repo_id, local_dir, readme)


BUILDERS = (xlsum, flores_plus, global_mmlu, m_mmlu, culturax, alpaca, bactrian_x, dolly, xnli, paws_x, tydiqa)


def build_all(out: Path, shared: Path) -> list[Path]:
    repos: list[Path] = []
    for build in BUILDERS:
        made = build(out, shared)
        repos.extend(made if isinstance(made, list) else [made])
    repos.append(model_repo(out, "mlift-test/stories260K", shared / "models" / "stories260K"))
    return repos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the mirrors-path folder olah serves")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--families", nargs="*", default=[], choices=sorted(FAMILY_REPOS),
                        help="also publish these real families' tiny models (tests/real_tokenizers.py builds them)")
    args = parser.parse_args()
    repos = build_all(args.out, args.shared)
    if args.families:
        from real_tokenizers import build

        repos += [family_repo(args.out, name, build(name)) for name in args.families]
    for repo in repos:
        rel = repo.relative_to(args.out)
        print(f"{rel}  ({LAYOUTS.get(str(rel), '')[:90]})")
        for ref in _git(repo, "for-each-ref", "--format=%(refname)").split():
            listing = _git(repo, "ls-tree", "-r", "--name-only", ref).split()
            print(f"  {ref}: {len(listing)} files, e.g. {', '.join(listing[:4])}")


if __name__ == "__main__":
    main()
