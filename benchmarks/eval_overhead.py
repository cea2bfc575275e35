"""Overhead of `mlift eval` over lm-eval's own `simple_evaluate` on the same model and tasks.

Both sides run the same generated task YAMLs (XL-Sum, FLORES both directions, Okapi m_MMLU) on the same HF model, in
this process, alternating, after one warm-up each; mlift's time includes building the tasks and writing results/table.
Prints ratio = lm-eval time / mlift time (median of the repeats); the target is >= 0.97.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/eval_overhead.py --model ../shared/models/stories260K \\
        --data-dir ../shared/data --langs hi fr --limit 8 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "shared/models/stories260K"))
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--langs", nargs="+", default=["hi", "fr"])
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import lm_eval
    from lm_eval.tasks import TaskManager

    from mlift.eval.run import EvalSuite, run_eval
    from mlift.eval.tasks import FloresTask, MMLUTask, XLSumTask, build_tasks

    suite = EvalSuite(langs=args.langs, data_dir=args.data_dir, limit=args.limit, device=args.device, seed=1234,
                      xlsum=XLSumTask(max_gen_toks=32), flores=FloresTask(max_gen_toks=32), mmlu=MMLUTask())
    tmp = Path(tempfile.mkdtemp(prefix="mlift_eval_bench_"))
    tasks_dir = tmp / "plain_tasks"
    specs = build_tasks(tasks_dir, suite.langs, suite.xlsum, suite.flores, suite.mmlu, suite.data_dir, limit=args.limit)
    names = [s.name for s in specs]

    def plain() -> float:
        t = time.perf_counter()
        lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": args.model, "dtype": "auto"}, tasks=names, num_fewshot=0, batch_size=1,
            device=args.device, limit=args.limit, log_samples=True, bootstrap_iters=0,
            task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False),
            random_seed=1234, numpy_random_seed=1234, torch_random_seed=1234, fewshot_random_seed=1234)
        return time.perf_counter() - t

    def ours(i: int) -> float:
        t = time.perf_counter()
        run_eval(suite, args.model, tmp / f"mlift_{i}")
        return time.perf_counter() - t

    plain(), ours(-1)  # warm-up: imports, dataset caches, model files in the page cache
    t_plain, t_ours = [], []
    for i in range(args.repeats):
        t_plain.append(plain())
        t_ours.append(ours(i))
    p, o = statistics.median(t_plain), statistics.median(t_ours)
    print(f"tasks: {len(names)} ({', '.join(names)}), limit {args.limit}, model {args.model}")
    print(f"lm-eval simple_evaluate: median {p:.2f} s  {[round(x, 2) for x in t_plain]}")
    print(f"mlift eval (run_eval):   median {o:.2f} s  {[round(x, 2) for x in t_ours]}")
    print(f"ratio (lm-eval / mlift) = {p / o:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
