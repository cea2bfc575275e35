"""Shared fixtures: real models and data, never mocks.

- `shared_dir`: ../shared (data + the pretrained 260K Llama); tests that need it skip with a clear reason when absent.
- `tiny_llama`: a random Llama + a BPE tokenizer trained here with `tokenizers`, saved as a normal HF model directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLIFT_SHARED", REPO.parent / "shared"))
# Subprocesses run the interpreter that runs the tests, wherever its environment lives (never a path in the checkout).
MLIFT = [sys.executable, "-m", "mlift"]
ACCELERATE_LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CORPUS = [
    "The Universal Declaration of Human Rights was adopted in 1948.",
    "All human beings are born free and equal in dignity and rights.",
    "Translate the following text into English.",
    "Write a short summary of the article.",
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतंत्रता और समानता प्राप्त है।",
    "人人生而自由，在尊严和权利上一律平等。",
    "يولد جميع الناس أحراراً متساوين في الكرامة والحقوق.",
    "Question: What is the capital of France? Answer: Paris.",
] * 20


# What Python, pytest and ruff write into a checkout by themselves (all git-ignored): not a test writing into it.
_CACHES = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache)(/|$)|\.pyc$")


def repo_state() -> set[str] | None:
    """The checkout as `git status --porcelain --ignored` sees it (changed, untracked and ignored entries, directories
    collapsed), less the caches; None outside a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=REPO, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode:
        return None
    return {line for line in done.stdout.splitlines() if not _CACHES.search(line[3:])}


@pytest.fixture(scope="session", autouse=True)
def checkout_untouched():
    """Tests write under tmp_path, never into the checkout: the session errors at its end if `git status` changed
    (a file written, edited or deleted; an ignored output such as runs/ or .gpu_check/ appearing). Set
    MLIFT_ALLOW_CHECKOUT_CHANGES=1 when you edit the checkout while the tests run."""
    before = repo_state()
    yield
    after = repo_state()
    if before is None or after is None or os.environ.get("MLIFT_ALLOW_CHECKOUT_CHANGES") == "1":
        return
    changed = sorted((after - before) | {f"gone: {x}" for x in before - after})
    assert not changed, f"the tests changed the checkout {REPO}: {changed[:20]}"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared data; CI has it, a fresh clone elsewhere may not)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def stories260k() -> Path:
    return shared_path("models", "stories260K")


def build_tiny_llama(out: Path, vocab_size: int = 512, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A real (random-weight) LlamaForCausalLM with a byte-level BPE tokenizer trained on a small multilingual corpus."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    fast.chat_template = TINY_CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama") / "model")


@pytest.fixture(scope="session")
def served(tmp_path_factory, tiny_llama):
    """`transformers serve` with the tiny Llama on 127.0.0.1, behind a fault-injecting loopback proxy."""
    from servers import FaultProxy, ModelServer

    server = ModelServer(tiny_llama, tmp_path_factory.mktemp("serve") / "serve.log")
    proxy = FaultProxy(server.url)
    yield server, proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """A local Hugging Face endpoint (olah, offline) serving small git repositories laid out like the hub repositories
    the recipes name (tests/hub_repos.py). Processes reach it with `hub_server.env(hf_home)`."""
    from hub import HubServer
    from hub_repos import build_all

    root = tmp_path_factory.mktemp("hub")
    build_all(root / "mirrors", shared_path())
    server = HubServer(root / "mirrors", root / "olah")
    yield server
    server.stop()
