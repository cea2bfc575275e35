"""The files a recipe names, and their content, as part of the recipe's identity.

A recipe field whose value names files the run reads is typed with a `Reads` marker (`InputPath`, `PromptRef`,
`ChatTemplateRef`, or `Annotated[..., Reads(...)]` for one with a default). `recipe_files` walks a recipe's data along
its schema (the resolved dict of a validated recipe, or the raw YAML with overrides, as `mlift sweep` reads it without
importing heavy schemas) and fingerprints every file those fields name, packaged defaults included. The run-directory
guard (mlift/runner/rundir.py), the recipe hash (mlift/recipe.py) and the sweep's job hashes (mlift/sweep/graph.py) use it.

The fingerprint of a file is the sha256 of its full content, streamed. A file whose size and mtime_ns are those
recorded before reuses the recorded hash (mtime is only a cache key: a copy with a new mtime is hashed again and, its
content being the same, matches), so a large corpus is read once per change, not at every start.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel


@dataclass(frozen=True)
class Reads:
    """Marks a recipe field that names files the run reads.

    kind: "path" (a file, directory or glob; `{...}` placeholders match anything; a value that is no local path, e.g.
    a hub id, is recorded as such), "prompt" (a packaged prompt name or a .jinja path), "chat_template" (a .jinja/.j2
    path; keywords and inline templates are in the recipe itself). default: what a None value reads (packaged prompt
    names, or "mlift:<resource>" / paths). files: "module:function" giving the files a path stands for (e.g. only the
    data shards of a run directory)."""

    kind: str = "path"
    default: tuple[str, ...] = ()
    files: str | None = None


InputPath = Annotated[str, Reads()]
PromptRef = Annotated[str, Reads("prompt")]
ChatTemplateRef = Annotated[str, Reads("chat_template")]

_memo: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path, known: dict[str, Any] | None = None) -> tuple[int, int, str]:
    """(size, mtime_ns, sha256 of the content); the recorded hash is reused when size and mtime_ns are unchanged."""
    st = path.stat()
    if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns and known.get("sha256"):
        return st.st_size, st.st_mtime_ns, known["sha256"]
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _memo[key] = h.hexdigest()
    return st.st_size, st.st_mtime_ns, _memo[key]


def load_memo(path: Path) -> None:
    """Hashes recorded by an earlier process (e.g. the last `mlift sweep` of this sweep), keyed by file, size and
    mtime_ns: a corpus is read once per change, not at every `mlift sweep --status`."""
    import json

    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for row in rows if isinstance(rows, list) else []:
        _memo[(row[0], row[1], row[2])] = row[3]


def save_memo(path: Path) -> None:
    from mlift.records import write_json_atomic

    def current(key: tuple[str, int, int]) -> bool:  # an entry for a file since changed is dropped
        try:
            st = os.stat(key[0])
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == key[1:]

    write_json_atomic(path, [[*k, v] for k, v in sorted(_memo.items()) if current(k)])


def _packaged(rel: str) -> Path:
    return Path(str(resources.files("mlift").joinpath(rel)))


def _target(mark: Reads, value: str) -> str | None:
    """The path a field value stands for (None: nothing outside the recipe is read)."""
    if value.startswith("mlift:"):
        return str(_packaged(value[len("mlift:"):]))
    if mark.kind == "prompt":
        return value if "/" in value or value.endswith(".jinja") else str(_packaged(f"prompts/{value}.jinja"))
    if mark.kind == "chat_template":
        return value if value.endswith((".jinja", ".j2")) else None
    return value


def _files_of(mark: Reads, path: str) -> list[Path] | None:
    """The local files a path names; None when it names none (a hub id, or not there yet)."""
    if mark.files:
        module, attr = mark.files.split(":")
        return getattr(importlib.import_module(module), attr)(path)
    pattern = re.sub(r"\{[^{}]*\}", "*", path)  # {lang}, {iso3}...: filled per language at run time
    p = Path(pattern)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".") for part in f.parts[len(p.parts):]))
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(f) for f in glob.glob(pattern, recursive=True) if Path(f).is_file()) or None
    return None


def fingerprint(path: str, mark: Reads = Reads(), known: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"path", "sha256" (of the files' names and contents; None: no local file), "files": {file: {size, mtime_ns,
    sha256}}}; `known` is an earlier fingerprint of the same path, whose hashes are reused for unchanged files."""
    files = _files_of(mark, path)
    if not files:
        return {"path": path, "sha256": None, "files": {}}
    old = (known or {}).get("files") or {}
    entries = {}
    for f in files:
        size, mtime, sha = file_sha256(f, old.get(str(f)))
        entries[str(f)] = {"size": size, "mtime_ns": mtime, "sha256": sha}
    base = _fixed_part(path)  # names relative to it: the same files read from another directory hash the same
    blob = "\n".join(f"{os.path.relpath(f, base)}\0{e['sha256']}" for f, e in entries.items())
    return {"path": path, "sha256": hashlib.sha256(blob.encode()).hexdigest(), "files": entries}


def _fixed_part(path: str) -> str:
    """The leading directories of a path or pattern that hold no wildcard or placeholder."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if any(ch in part for ch in "*?[{"):
            return str(Path(*parts[:i])) if i else "."
    return path


# --- the walk ---------------------------------------------------------------------------------------------------------


def schemas_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic schemas in a field's type (itself, or the members of a union / Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(schemas_in(arg))
    return found


def tag_of(schema: type[BaseModel], value: Any) -> str | None:
    """For a tagged union member (a Literal field such as backend: openai), the tag pydantic puts in locations."""
    if not isinstance(value, dict):
        return None
    for name, field in schema.model_fields.items():
        if get_origin(field.annotation) is Literal and value.get(name) in get_args(field.annotation):
            return str(value[name])
    return None


def _mark_in(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> Reads | None:
    """The Reads marker of a field (in its metadata, or anywhere in its type: X | None, Annotated[...])."""
    for m in metadata:
        if isinstance(m, Reads):
            return m
    if get_origin(annotation) is Annotated:
        return _mark_in(get_args(annotation)[0], list(annotation.__metadata__))
    for arg in get_args(annotation):
        found = _mark_in(arg)
        if found:
            return found
    return None


def _default(field: Any) -> Any:
    value = field.get_default(call_default_factory=True)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _pick(members: list[type[BaseModel]], value: dict) -> type[BaseModel] | None:
    """The union member a mapping is (by its Literal tag, e.g. backend: openai; else the first whose keys fit)."""
    for m in members:
        if tag_of(m, value) is not None:
            return m
    for m in members:
        if set(value) <= set(m.model_fields):
            return m
    return members[0] if members else None


def _walk(annotation: Any, value: Any, key: str, out: dict[str, tuple[Reads, str]]) -> None:
    if value is None:
        return
    origin = get_origin(annotation)
    if origin is Annotated:
        return _walk(get_args(annotation)[0], value, key, out)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(value, dict):
            walk_schema(annotation, value, key, out)
        return
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin not in (list, tuple, set, dict) and len(args) == 1:  # X | None
        return _walk(args[0], value, key, out)
    if origin in (list, tuple, set) and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _walk(args[0] if args else Any, item, f"{key}.{i}", out)
    elif origin is dict and isinstance(value, dict) and len(args) == 2:
        for k, item in value.items():
            _walk(args[1], item, f"{key}.{k}", out)
    elif args and isinstance(value, dict):  # a union of sections: walk the member the mapping is
        member = _pick(schemas_in(annotation), value)
        if member is not None:
            walk_schema(member, value, key, out)
    elif args and isinstance(value, list):
        for a in args:
            if get_origin(a) in (list, tuple):
                return _walk(a, value, key, out)


def walk_schema(schema: type[BaseModel], data: dict[str, Any], prefix: str = "",
                out: dict[str, tuple[Reads, str]] | None = None) -> dict[str, tuple[Reads, str]]:
    """key path -> (marker, value) for every marked field of `data` (a recipe mapping; absent keys take defaults)."""
    out = {} if out is None else out
    for name, field in schema.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        value = data[name] if name in data else _default(field)
        mark = _mark_in(field.annotation, field.metadata)
        if mark is None:
            _walk(field.annotation, value, key, out)
            continue
        values = [value] if isinstance(value, str) else list(value.values()) if isinstance(value, dict) else \
            list(value) if isinstance(value, (list, tuple)) else []
        if value is None:
            values = list(mark.default)
        for i, v in enumerate(values):
            target = _target(mark, str(v))
            if target is not None:
                out[key if len(values) == 1 else f"{key}.{i}"] = (mark, target)
    return out


def recipe_files(schema: type[BaseModel], data: dict[str, Any],
                 known: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """key path -> fingerprint of what it names, for every file-naming field of a recipe mapping."""
    return {key: fingerprint(path, mark, (known or {}).get(key)) for key, (mark, path) in
            walk_schema(schema, data).items()}


def changed_files(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two recipe_files results, one line per key, naming the file(s)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key) or {}, new.get(key) or {}
        if a.get("sha256") == b.get("sha256") and a.get("path") == b.get("path"):
            continue
        af, bf = a.get("files") or {}, b.get("files") or {}
        which = sorted(f for f in set(af) | set(bf) if (af.get(f) or {}).get("sha256") != (bf.get(f) or {}).get("sha256"))
        path = b.get("path", a.get("path"))
        inside = [f for f in which if f != path]
        what = f" ({', '.join(inside[:3])}{f' and {len(inside) - 3} more' if len(inside) > 3 else ''})" if inside else ""
        lines.append(f"{key}: {path}{what} (sha256 {str(a.get('sha256'))[:12]} then, {str(b.get('sha256'))[:12]} now)")
    return lines


def files_digest(files: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    return {k: v["sha256"] for k, v in sorted(files.items())}

