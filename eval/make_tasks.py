"""Write mlift's lm-eval task YAMLs (one per language / direction) for an eval suite into a folder, so plain lm-eval
can run them too:

    python eval/make_tasks.py --suite recipes/eval/local_small.yaml --langs hi fr --out eval/generated
    lm_eval --model hf --model_args pretrained=MODEL --device cpu --include_path eval/generated \\
        --tasks mlift_xlsum_hin_Deva,mlift_flores_hin_Deva-eng_Latn --limit 5

The YAMLs carry absolute `data_files` (lm-eval resolves relative ones against the current directory, not the YAML),
so they are generated per machine rather than committed. `mlift eval` does the same into `<out>/tasks/`.
"""

from __future__ import annotations

import argparse
import json

from mlift.eval_tasks import build_tasks
from mlift.evaluate import EvalSuite
from mlift.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--langs", nargs="+", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    overrides = [f"data_dir={args.data_dir}"] if args.data_dir else []
    if args.langs:
        overrides.append(f"langs=[{', '.join(args.langs)}]")
    suite = load_recipe(args.suite, EvalSuite, overrides).cfg
    specs = build_tasks(args.out, suite.langs, suite.xlsum, suite.flores, suite.mmlu, suite.data_dir)
    for spec in specs:
        print(json.dumps(spec.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    main()
