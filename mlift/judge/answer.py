"""A model answers an instruction eval set (AlpacaFarm-style: id, lang, instruction [, input]) per language through
its chat template; the answers are what `mlift judge` compares (Pinch's evaluation, Shaham et al. 2024 §3).

The tokenizer and chat template come from the adapter/checkpoint dir when it has one (what training saved), so a model
is asked the way it was trained. The request cache lives under a digest of the model files, so a retrained model
at the same path never gets its predecessor's answers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlift.languages import UnknownLanguageError, get_language
from mlift.recipe import RecipeError

REQUIRED = ("id", "lang", "instruction")
SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "pinch_instructions"


def _file_language(path: Path) -> str | None:
    try:
        return get_language(path.stem).flores
    except UnknownLanguageError:
        return None


def instruction_files(source: str | Path) -> list[Path]:
    """A JSONL file, or a dir of <lang>.jsonl files; `shipped` is the tiny 12-language set in mlift/data."""
    path = SHIPPED if str(source) == "shipped" else Path(source)
    if path.is_file():
        return [path]
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else []
    if not files:
        raise RecipeError(f"--instructions {source}: no JSONL file there (expected a file or a dir of <lang>.jsonl)")
    return files


def load_instructions(source: str | Path, langs: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """Rows {id, lang (FLORES), instruction, input}; a bad row is an error naming file:line and the key."""
    from mlift.records import BadLine, read_jsonl

    wanted = None
    if langs:
        try:
            wanted = [get_language(x).flores for x in langs]
        except UnknownLanguageError as exc:
            raise RecipeError(f"--langs: {exc}") from None
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    per_lang: dict[str, int] = {}
    for path in instruction_files(source):
        file_lang = _file_language(path)
        for line, obj in read_jsonl(path):
            where = f"{path}:{line}"
            if isinstance(obj, BadLine):
                raise RecipeError(f"{where}: {obj.reason}")
            if not isinstance(obj, dict):
                raise RecipeError(f"{where}: not a JSON object")
            for key in REQUIRED:
                if obj.get(key) in (None, ""):
                    raise RecipeError(f"{where}: missing key {key!r} (rows need {', '.join(REQUIRED)} [, input])")
            try:
                lang = get_language(str(obj["lang"])).flores
            except UnknownLanguageError as exc:
                raise RecipeError(f"{where}: lang: {exc}") from None
            if file_lang and lang != file_lang:
                raise RecipeError(f"{where}: lang {obj['lang']!r} in a file named for {file_lang}")
            key = (lang, str(obj["id"]))
            if key in seen:
                raise RecipeError(f"{where}: id {obj['id']!r} appears twice for {lang}")
            seen.add(key)
            if wanted and lang not in wanted:
                continue
            if limit and per_lang.get(lang, 0) >= limit:
                continue
            per_lang[lang] = per_lang.get(lang, 0) + 1
            rows.append({"id": str(obj["id"]), "lang": lang, "instruction": str(obj["instruction"]),
                         "input": str(obj.get("input") or "")})
    if wanted:
        missing = [x for x in wanted if x not in per_lang]
        if missing:
            raise RecipeError(f"--instructions {source}: no instructions in {', '.join(missing)}")
    if not rows:
        raise RecipeError(f"--instructions {source}: no instructions")
    return rows


def has_tokenizer(path: str | Path | None) -> bool:
    return path is not None and Path(path, "tokenizer_config.json").is_file()


def model_digest(*paths: str | None) -> str:
    """Of local model/adapter dirs: file names, sizes and mtimes (cheap for 16 GB checkpoints, changes on retrain);
    a hub id stands for itself."""
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        path = Path(p)
        h.update(str(p).encode())
        if path.is_dir():
            for f in sorted(path.iterdir()):
                if f.is_file():
                    st = f.stat()
                    h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def chat_template(model: str, adapter: str | None, setting: str | None) -> tuple[str, str, str]:
    """(template, where it came from, tokenizer path): the adapter/checkpoint dir's tokenizer when it has one."""
    from transformers import AutoTokenizer

    from mlift.train.chat import resolve_chat_template

    tok_path = adapter if has_tokenizer(adapter) else model
    tokenizer = AutoTokenizer.from_pretrained(tok_path)
    try:
        template, source = resolve_chat_template(setting, tokenizer)
    except ValueError as exc:
        raise RecipeError(f"--chat-template: {exc}") from None
    return template, source, tok_path  # type: ignore[return-value]


def user_message(row: dict) -> str:
    from mlift.data.conversations import user_text

    return user_text(row["instruction"], row["input"])


def answer_rows(rows: list[dict], texts: list[Any]) -> tuple[list[dict], list[dict]]:
    """Answer-file rows (what `mlift judge` reads) and quarantined failures with their reason."""
    good, bad = [], []
    for row, c in zip(rows, texts, strict=True):
        if c.ok:
            good.append({"id": row["id"], "lang": row["lang"], "instruction": user_message(row), "response": c.text})
        else:
            bad.append({"id": row["id"], "lang": row["lang"], "reason": c.error or "no text"})
    return good, bad


def template_sha256(template: str) -> str:
    return hashlib.sha256(template.encode()).hexdigest()


def manifest(**fields: Any) -> dict[str, Any]:
    return json.loads(json.dumps(fields, default=str))
