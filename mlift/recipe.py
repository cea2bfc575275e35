"""Recipes: YAML files validated by pydantic schemas, with `--set key.sub=value` overrides.

Every schema forbids unknown keys, so a misspelt key fails before any work starts. Errors name the file, the line
and the key path. A loaded recipe carries its resolved form (overrides applied, defaults filled) and a stable hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mlift.fingerprint import schemas_in, tag_of


class Schema(BaseModel):
    """Base of every recipe section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, line and key path."""


T = TypeVar("T", bound=Schema)


@dataclass
class Recipe(Generic[T]):
    """A validated recipe: the schema object, where it came from, and its resolved dict and hash."""

    cfg: T
    path: Path | None
    overrides: list[str]
    resolved: dict[str, Any]
    files: dict[str, Any] | None = None  # the files it names, fingerprinted on first use (mlift/fingerprint.py)

    def named_files(self, known: dict[str, Any] | None = None) -> dict[str, Any]:
        """key path -> fingerprint of every file the recipe names (inputs, prompts, few-shot files, templates);
        `known`: an earlier record whose hashes are reused for files whose size and mtime did not change."""
        if self.files is None:
            from mlift.fingerprint import recipe_files

            self.files = recipe_files(type(self.cfg), self.resolved, known)
        return self.files

    @property
    def hash(self) -> str:
        """Of the resolved keys and the content of the files they name: an edited prompt or input is another recipe."""
        from mlift.fingerprint import files_digest

        files = self.named_files()
        return recipe_hash({**self.resolved, "_files": files_digest(files)} if files else self.resolved)

    @property
    def seed(self) -> int | None:
        return getattr(self.cfg, "seed", None)

    def as_manifest(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path else None,
            "overrides": self.overrides,
            "hash": self.hash,
            "seed": self.seed,
            "resolved": self.resolved,
            "files": self.named_files(),
        }


def recipe_hash(resolved: dict[str, Any]) -> str:
    blob = json.dumps(resolved, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.0.c=value` -> (["a", "b", "0", "c"], value); the value is read as YAML (3 -> int, [a, b] -> list)."""
    if "=" not in text:
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.lr=1e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set {text!r}: empty key segment")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise RecipeError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, path[: depth + 1])]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, (dict, list)):
                raise RecipeError(f"--set {'.'.join(path)}: {'.'.join(path[: depth + 1])} is a {type(node).__name__}, not a section")
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(node, last, path)] = value
    else:
        node[last] = value


def _list_index(node: list, part: str, path: list[str]) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise RecipeError(f"--set {'.'.join(path)}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line, for error messages."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = (*prefix, str(key_node.value))
                lines[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = (*prefix, str(i))
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _display_path(data: Any, loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Pydantic locations include union tags (e.g. ('llm', 'openai', 'timeout')); keep the keys the YAML really has."""
    path: list[str] = []
    node = data
    tag_seen = None
    for i, part in enumerate(loc):
        is_tag = tag_seen is not node and isinstance(node, dict) and isinstance(part, str) and part in [v for v in node.values() if isinstance(v, str)]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if is_tag and (nxt is None or nxt in node):
            tag_seen = node
            continue  # a union tag such as backend: openai, not a key
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(str(part))
            node = node[part]
        elif i == len(loc) - 1 or not isinstance(node, (dict, list)):
            path.append(str(part))  # a missing or unknown key: name it
    return tuple(path)


def format_validation_error(exc: ValidationError, data: Any, source: str, lines: dict[tuple[str, ...], int]) -> str:
    errors = _expand_passthrough(exc.errors())
    out = [f"{source}: invalid recipe ({len(errors)} problem{'s' if len(errors) > 1 else ''})"]
    for err in errors:
        path = _display_path(data, tuple(err["loc"]))
        if err["type"] == "union_tag_invalid":  # name the tag key itself, e.g. translator.llm.backend
            path = (*path, str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
        key = ".".join(path) or "<top level>"
        line = None
        for n in range(len(path), 0, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
        where = f"{source}:{line}" if line else source
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            allowed = _SCHEMA_FIELDS.get(tuple(err["loc"][:-1]), [])
            if allowed:
                msg += f" (expected one of: {', '.join(allowed)})"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "union_tag_invalid":
            msg = f"{err['ctx']['tag']!r} is not one of {err['ctx']['expected_tags']}"
        elif err["type"] == "passthrough":
            msg = err["msg"]
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        out.append(f"  {where}: {key}: {msg}")
    return "\n".join(out)


def _expand_passthrough(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pass-through section's error (mlift.passthrough) becomes one error per key, located at that key."""
    from mlift.passthrough import PassthroughError

    out = []
    for err in errors:
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PassthroughError):
            out.extend({"loc": (*err["loc"], key), "type": "passthrough", "msg": msg} for key, msg in cause.problems)
        else:
            out.append(err)
    return out


_SCHEMA_FIELDS: dict[tuple[Any, ...], list[str]] = {}


def _collect_fields(schema: type[BaseModel], data: Any, loc: tuple[Any, ...] = ()) -> None:
    """Remember the field names of each section, so an unknown key can list what was expected."""
    _SCHEMA_FIELDS[loc] = sorted(schema.model_fields)
    if not isinstance(data, dict):
        return
    for name, field in schema.model_fields.items():
        if name not in data:
            continue
        for sub in schemas_in(field.annotation):
            value = data[name]
            tag = tag_of(sub, value)
            if tag is not None:
                _collect_fields(sub, value, (*loc, name, tag))
            _collect_fields(sub, value, (*loc, name))


def validate_recipe(schema: type[T], data: Any, source: str = "<recipe>", text: str = "") -> T:
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        _SCHEMA_FIELDS.clear()
        _collect_fields(schema, data)
        raise RecipeError(format_validation_error(exc, data, source, _key_lines(text))) from None


def load_recipe(path: str | Path | None, schema: type[T], overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> Recipe[T]:
    """Read a YAML recipe (or start from `base`), apply overrides, validate. Raises RecipeError naming file/line/key."""
    text = ""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"{path}: recipe file not found")
        text = path.read_text(encoding="utf-8-sig")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
        data = {} if data is None else data
    else:
        data = json.loads(json.dumps(base or {}))
    source = str(path) if path is not None else "<embedded recipe>"
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    for item in overrides:
        keys, value = parse_override(item)
        apply_override(data, keys, value)
    cfg = validate_recipe(schema, data, source + (f" (with --set {' '.join(overrides)})" if overrides else ""), text)
    if "output_dir" in type(cfg).model_fields:
        problem = output_dir_problem(cfg.output_dir)
        if problem:
            line = None if any(o.split("=", 1)[0].strip() == "output_dir" for o in overrides) else \
                _key_lines(text).get(("output_dir",))
            where = source + (f" (with --set {' '.join(overrides)})" if overrides else "") + (f":{line}" if line else "")
            raise RecipeError(f"{where}: output_dir: {problem}")
    resolved = cfg.model_dump(mode="json")
    return Recipe(cfg=cfg, path=path, overrides=list(overrides), resolved=resolved)


# Asked before any work starts, so a run never ends in a crash at its first write (or, with an empty value,
# writes into the current directory).
def output_dir_problem(value: str | os.PathLike | None) -> str | None:
    """Why `value` cannot be an output directory (empty, a file, under a file, not writable), or None."""
    if value is None or not str(value).strip():
        return "empty (the run would be written into the current directory); give a directory"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    probe = path
    while not probe.exists():  # the nearest existing ancestor is where the directory will be created
        if probe.parent == probe:
            return None
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created: {probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None
