"""The data step of `mlift train` vs `load_dataset("json")` + TRL's own processing, on N synthetic chat conversations
(JSONL in /tmp): wall time and peak RSS of each, every run in a fresh process. "ours, cold" builds the cached Arrow
mixture and tokenizes; "ours, other rank" is what every further rank (or a rerun) pays: it loads the mixture and TRL's
tokenized cache. Tokenization: TRL's SFTTrainer with the 260K Llama tokenizer (../shared/models/stories260K). Peak RSS
is the larger of the main process and its largest worker (with --num-proc > 1).

    .venv/bin/python benchmarks/train_data.py [--n 1000000] [--model ../shared/models/stories260K] [--num-proc 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SFT = {"per_device_train_batch_size": 8, "max_length": 256, "save_strategy": "no", "report_to": "none", "bf16": False,
       "use_cpu": True, "assistant_only_loss": True, "max_steps": 1}
WORDS = "the a cat dog sun river tree house small big red blue runs sees finds likes very quickly under over".split()


def make_data(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            q = " ".join(rng.choices(WORDS, k=rng.randint(5, 20)))
            a = " ".join(rng.choices(WORDS, k=rng.randint(20, 80)))
            fh.write(json.dumps({"id": f"c{i}", "lang": "eng_Latn", "messages": [
                {"role": "user", "content": q.capitalize() + "?"}, {"role": "assistant", "content": a + "."}]}) + "\n")


def child(mode: str, data: str, model: str, out: str, num_proc: int) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.time()
    if mode == "before":  # what mlift/train/data.py did before: Python lists, json.dumps hash, Dataset.from_list
        import hashlib

        from datasets import Dataset
        from transformers import AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        from mlift.train.chat import DEFAULT_CHAT_TEMPLATE

        rows = [{"messages": json.loads(line)["messages"], "lang": "eng_Latn"} for line in open(data, encoding="utf-8")]
        hashlib.sha256(json.dumps([r["messages"] for r in rows], sort_keys=True).encode()).hexdigest()
        ds = Dataset.from_list(rows).select_columns(["messages"])
        tok = AutoTokenizer.from_pretrained(model)
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
        args = SFTConfig(output_dir=out, dataset_num_proc=num_proc, **SFT)
        trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    elif mode == "bare":
        from datasets import load_dataset
        from transformers import AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        from mlift.train.chat import DEFAULT_CHAT_TEMPLATE

        tok = AutoTokenizer.from_pretrained(model)
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
        ds = load_dataset("json", data_files=data, split="train").select_columns(["messages"])
        args = SFTConfig(output_dir=out, dataset_num_proc=num_proc, **SFT)
        trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    else:
        from mlift.train.sft import build_trainer, load_train_recipe

        recipe = load_train_recipe(None, base={
            "seed": 0, "output_dir": out, "model": {"name_or_path": model},
            "data": {"datasets": [{"path": data}]}, "sft": {**{k: v for k, v in SFT.items() if k != "use_cpu"},
                                                            "use_cpu": True, "dataset_num_proc": num_proc}})
        trainer, _ = build_trainer(recipe)
    n = len(trainer.train_dataset)
    # dataset_num_proc > 1 tokenizes in worker processes: count the largest of them too
    rss_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({"mode": mode, "seconds": round(time.time() - start, 1), "peak_rss_mb": round(rss_mb),
                      "examples": n}))


def run(mode: str, data: Path, model: str, tmp: Path, cache: Path, num_proc: int) -> dict:
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "MLIFT_DATA_CACHE": str(cache / "mlift"),
           "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, __file__, "--child", mode if mode in ("bare", "before") else "ours", "--data", str(data),
                        "--model", model, "--out", str(tmp / mode), "--num-proc", str(num_proc)],
                       env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{mode} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--model", default=str(REPO.parent / "shared" / "models" / "stories260K"))
    ap.add_argument("--num-proc", type=int, default=1)
    ap.add_argument("--modes", default="bare,ours-cold,ours-warm,before")
    ap.add_argument("--child")
    ap.add_argument("--data")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.data, a.model, a.out, a.num_proc)
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        tmp = Path(d)
        data = tmp / "conversations.jsonl"
        t0 = time.time()
        make_data(data, a.n)
        print(f"{a.n} conversations, {data.stat().st_size / 1e6:.0f} MB JSONL ({time.time() - t0:.0f} s to write)")
        names = {"bare": "bare (load_dataset json + TRL)", "ours-cold": "ours, cold",
                 "ours-warm": "ours, other rank / rerun", "before": "before (lists + Dataset.from_list)"}
        caches = {"bare": "cache-bare", "ours-cold": "cache-ours", "ours-warm": "cache-ours", "before": "cache-before"}
        res = {names[m]: run(m, data, a.model, tmp, tmp / caches[m], a.num_proc) for m in a.modes.split(",")}
    base = next(iter(res.values()))
    print("| run | seconds | peak RSS (MB) | examples | time vs first | RSS vs first |\n|---|---|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['seconds']} | {r['peak_rss_mb']} | {r['examples']} | "
              f"{r['seconds'] / base['seconds']:.2f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} |")


if __name__ == "__main__":
    main()
