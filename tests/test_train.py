"""Training (issue 5): real TRL SFT on CPU with the pretrained 260K Llama (base model, no chat template) and a tiny
locally built Llama. Every check runs on real tokenized batches or real saved files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlift.records import Record, write_records
from mlift.train.sft import load_train_recipe

REPO = Path(__file__).resolve().parents[1]

STORIES = [
    ("Tell me a story about a cat.", "Once upon a time, there was a little cat. The cat liked to play in the sun."),
    ("What did Tom find?", "Tom found a big red ball in the park. He was very happy."),
    ("Write about a dog.", "The dog ran to the tree. He saw a bird and barked. The bird flew away."),
    ("Who is Lily?", "Lily is a little girl. She loves to play with her toys every day."),
]


def make_mlift_dataset(out: Path, n: int = 48, shards: int = 2, lang: str = "eng_Latn") -> Path:
    """An mlift dataset: shard-*.jsonl of chat records; every third one has a system turn."""
    recs = []
    for i in range(n):
        q, a = STORIES[i % len(STORIES)]
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i % 3 == 0:
            msgs.insert(0, {"role": "system", "content": "You are a storyteller."})
        recs.append(Record(id=f"{lang}-{i}", lang=lang, fields={"messages": msgs}, meta={"i": i}))
    for s in range(shards):
        write_records(out / f"shard-{s:05d}-of-{shards:05d}.jsonl", recs[s::shards])
    return out


def base_recipe(model: Path, data: Path, out: Path, **sft) -> dict:
    return {
        "seed": 7,
        "output_dir": str(out),
        "model": {"name_or_path": str(model)},
        "data": {"datasets": [{"path": str(data)}]},
        "sft": {"learning_rate": 5e-3, "per_device_train_batch_size": 8, "max_length": 128, "logging_steps": 1,
                "save_strategy": "no", "lr_scheduler_type": "constant", "max_steps": 12, **sft},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
    }


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core box oversubscribed threads make a 10 s test 120 s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def story_data(tmp_path_factory) -> Path:
    return make_mlift_dataset(tmp_path_factory.mktemp("data") / "stories")


def test_unknown_sft_key_fails_fast_naming_it(tmp_path):
    from mlift.recipe import RecipeError

    with pytest.raises(RecipeError, match=r"sft\.learning_rat.*did you mean learning_rate"):
        load_train_recipe(REPO / "recipes/stories260k/lora-sft/config.yaml", ["sft.learning_rat=1e-3"])
    with pytest.raises(RecipeError, match=r"sft\.seed: set it at the top level"):
        load_train_recipe(REPO / "recipes/stories260k/lora-sft/config.yaml", ["sft.seed=1"])
    recipe = load_train_recipe(REPO / "recipes/stories260k/lora-sft/config.yaml", ["sft.num_train_epochs=3"])
    assert recipe.cfg.sft["num_train_epochs"] == 3 and recipe.cfg.lora.r == 8


def test_mixture_weights_langs_and_formats(tmp_path):
    from mlift.train.data import DatasetSource, build_mixture

    a = make_mlift_dataset(tmp_path / "a", n=20, lang="eng_Latn")
    b = make_mlift_dataset(tmp_path / "b", n=10, lang="fra_Latn")
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Say hi", "input": "", "output": "hi"}] * 4))
    import datasets

    pq = tmp_path / "pc.parquet"
    datasets.Dataset.from_list([{"prompt": "2+2?", "completion": "4"}] * 3).to_parquet(str(pq))
    sources = [DatasetSource(path=str(a), weight=0.5), DatasetSource(path=str(b), weight=2.0),
               DatasetSource(path=str(alpaca), weight=1.0), DatasetSource(path=str(pq))]
    ds, info = build_mixture(sources, seed=1)
    assert [s["mixed_examples"] for s in info["sources"]] == [10, 20, 4, 3]
    assert {"role": "user", "content": "2+2?"} in [m for r in ds["messages"] for m in r]
    assert len(ds) == 37 and ds[0]["messages"][-1]["role"] == "assistant"
    langs = [r["lang"] for r in ds]
    assert langs.count("fra_Latn") == 20
    again, info2 = build_mixture(sources, seed=1)
    assert info2["hash"] == info["hash"] and again["messages"] == ds["messages"]
    other, info3 = build_mixture(sources, seed=2)
    assert info3["hash"] != info["hash"]  # a different seed picks/permutes differently
    make_mlift_dataset(tmp_path / "a", n=6, shards=3, lang="deu_Latn")  # adds 3 more shards of German to a/
    only, info4 = build_mixture([DatasetSource(path=str(a), langs=["deu_Latn"])], seed=1)
    assert set(only["lang"]) == {"deu_Latn"} and info4["sources"][0]["files"] == 5
    with pytest.raises(ValueError, match="no examples"):
        build_mixture([DatasetSource(path=str(b), langs=["eng_Latn"])], seed=1)


def test_base_model_batches_train_eos_and_mask_prompts(stories260k, story_data, tmp_path):
    """On real collated batches: labels cover exactly the assistant replies + EOS; user/system/header tokens are -100."""
    from mlift.train.sft import build_trainer

    recipe = load_train_recipe(None, base=base_recipe(stories260k, story_data, tmp_path / "out"))
    trainer, info = build_trainer(recipe)
    assert info["chat"]["chat_template_source"] == "mlift-default" and info["chat"]["eos_in_mask"]
    tok = trainer.processing_class
    eos = tok.eos_token_id
    batch = next(iter(trainer.get_train_dataloader()))
    labels, ids = batch["labels"], batch["input_ids"]
    replies = {a for _, a in STORIES}
    for row_ids, row_labels in zip(ids.tolist(), labels.tolist(), strict=True):
        trained = [t for t, lab in zip(row_ids, row_labels, strict=True) if lab != -100]
        assert trained and trained[-1] == eos, "the EOS token must be in the loss"
        assert trained.count(eos) == 1
        text = tok.decode(trained[:-1]).strip()
        assert text in replies, f"trained tokens must be exactly the reply, got {text!r}"
        full = tok.decode([t for t in row_ids if t != tok.pad_token_id or t == eos])
        assert "storyteller" not in text and "<|user|>" not in text
        assert "<|user|>" in full  # the prompt is in the input, just not in the loss
    assert any("storyteller" in tok.decode(r) for r in ids.tolist())


def test_lora_sft_stories260k_learns_saves_reloads(stories260k, story_data, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mlift.train.sft import train

    out = tmp_path / "lora"
    recipe = load_train_recipe(None, base=base_recipe(stories260k, story_data, out, max_steps=15))
    manifest = train(recipe)
    m = manifest["metrics"]
    assert m["last_loss"] < 0.7 * m["first_loss"], m
    assert manifest["model"]["adapter_params"] > 0 and (out / "adapter_model.safetensors").stat().st_size > 1000
    assert manifest["recipe"]["hash"] == recipe.hash and manifest["seed"] == 7
    assert manifest["data"]["sources"][0]["hash"] and manifest["versions"]["trl"]
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["metrics"]["global_step"] == 15

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and "{% generation %}" in tok.chat_template  # the template travels with the adapter
    prompt = tok.apply_chat_template([{"role": "user", "content": STORIES[0][0]}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    base = AutoModelForCausalLM.from_pretrained(stories260k)
    gen = {"max_new_tokens": 24, "do_sample": False, "pad_token_id": tok.eos_token_id}
    with torch.no_grad():
        before = base.generate(**prompt, **gen)[0].tolist()
        tuned = PeftModel.from_pretrained(base, out)
        after = tuned.generate(**prompt, **gen)[0].tolist()
    assert before != after
    # P(EOS | prompt + reply) rose: the base model is being taught to stop (TinyStories never trained its EOS)
    convo = [{"role": "user", "content": STORIES[0][0]}, {"role": "assistant", "content": STORIES[0][1]}]
    ids = tok.apply_chat_template(convo, return_tensors="pt", return_dict=True)["input_ids"]
    ids = ids[:, : ids[0].tolist().index(tok.eos_token_id)]
    with torch.no_grad():
        p_tuned = tuned(input_ids=ids).logits[0, -1].log_softmax(-1)[tok.eos_token_id].item()
        with tuned.disable_adapter():
            p_base = tuned(input_ids=ids).logits[0, -1].log_softmax(-1)[tok.eos_token_id].item()
    assert p_tuned > p_base + 1.0, (p_base, p_tuned)


def test_full_finetune_tiny_llama_with_wandb_offline(tiny_llama, story_data, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from mlift.train.sft import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    base = base_recipe(tiny_llama, story_data, tmp_path / "full", max_steps=10, learning_rate=3e-3,
                       report_to="wandb")
    base.pop("lora")
    base["wandb"] = {"project": "mlift-test", "group": "tiny/full", "tags": ["test"]}
    manifest = train(load_train_recipe(None, base=base))
    assert manifest["chat"]["chat_template_source"] == "tokenizer"  # the fixture's own template (has markers)
    assert manifest["metrics"]["last_loss"] < manifest["metrics"]["first_loss"]
    assert not (tmp_path / "full" / "adapter_model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "full")
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama)
    w, w0 = model.model.layers[0].mlp.up_proj.weight, ref.model.layers[0].mlp.up_proj.weight
    assert not w.equal(w0), "full fine-tuning changed the weights"
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert os.environ["WANDB_RUN_GROUP"] == "tiny/full" and os.environ["WANDB_PROJECT"] == "mlift-test"


def test_wandb_without_login_is_simply_off(tmp_path, monkeypatch, capsys):
    from mlift.train.sft import configure_wandb

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    recipe = load_train_recipe(REPO / "recipes/stories260k/lora-sft/config.yaml")
    assert configure_wandb(recipe, ["wandb", "tensorboard"]) == ["tensorboard"]
    assert "W&B off: not logged in" in capsys.readouterr().err


def test_sbatch_dry_run_renders_valid_bash(tmp_path, capsys, monkeypatch):
    from mlift.cli import main

    monkeypatch.chdir(REPO)
    rc = main(["train", "recipes/stories260k/lora-sft/config.yaml", "--dry-run", "--set", "slurm.nodes=4",
               "--set", "slurm.partition=gpu", "--set", "wandb.name=it's a run"])
    assert rc == 0
    script = capsys.readouterr().out
    assert "#SBATCH --nodes=4" in script and "#SBATCH --partition=gpu" in script and "#SBATCH --requeue" in script
    assert '--machine_rank "$SLURM_NODEID"' in script and "--rdzv_backend c10d" in script
    assert "srun" in script and "--resume" in script and "recipes/accelerate/zero3.yaml" in script
    assert "#SBATCH --gres=gpu:8" in script and "NUM_PROCESSES=$(( SLURM_NNODES * 8 ))" in script
    path = tmp_path / "train.sbatch"
    path.write_text(script)
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # the quoted override survives the trip through srun's bash -c: run that line with printf instead of srun
    args = script.split("' mlift-train ", 1)[1].split(" &\n")[0]
    echo = subprocess.run(["bash", "-c", f"printf '%s\\n' {args}"], capture_output=True, text=True)
    assert "wandb.name=it's a run" in echo.stdout.splitlines(), echo.stdout
    # no GPUs on the cluster: no --gres line (Slurm refuses unknown gres at submit)
    main(["train", "recipes/stories260k/lora-sft/config.yaml", "--dry-run", "--set", "slurm.gpus_per_node=0"])
    assert "--gres" not in capsys.readouterr().out
    # the warning signal is configurable: Slurm sends it to the batch script, which forwards it as a stop file
    main(["train", "recipes/stories260k/lora-sft/config.yaml", "--dry-run", "--set", "slurm.signal=USR2",
          "--set", "slurm.signal_seconds=600"])
    script = capsys.readouterr().out
    assert "#SBATCH --signal=B:USR2@600" in script and "trap on_signal USR2" in script
    assert "MLIFT_STOP_FILE" in script and 'scontrol requeue "$SLURM_JOB_ID"' in script
