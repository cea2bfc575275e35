"""Recipe sections handed to a library as keyword arguments (`sft:` -> TRL's SFTConfig), checked at load time.

The field names and types come from the library's own dataclass (typing.get_type_hints), so they follow upgrades; a
value YAML read as a string (`1e-3`, a `--set` typo) is converted where the field is numeric, or refused with the key
named; ranges the library leaves to a crash hours later (a negative epoch count, a zero batch size) are refused here.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import typing
from functools import cache
from typing import Any

# Ranges the libraries document but do not check before training starts:
# (low, low inclusive?, high, high inclusive?, extra allowed values such as max_steps=-1); None: unbounded.
Range = tuple[float | None, bool, float | None, bool, tuple[Any, ...]]
POSITIVE: Range = (0, False, None, False, ())
AT_LEAST_1: Range = (1, True, None, False, ())
NON_NEGATIVE: Range = (0, True, None, False, ())
UNIT: Range = (0, True, 1, False, ())

TRAINING_RANGES: dict[str, Range] = {
    "learning_rate": POSITIVE, "num_train_epochs": POSITIVE, "max_steps": (1, True, None, False, (-1,)),
    "per_device_train_batch_size": AT_LEAST_1, "per_device_eval_batch_size": AT_LEAST_1,
    "gradient_accumulation_steps": AT_LEAST_1, "eval_accumulation_steps": AT_LEAST_1,
    "logging_steps": POSITIVE, "save_steps": POSITIVE, "eval_steps": POSITIVE, "warmup_steps": NON_NEGATIVE,
    "weight_decay": NON_NEGATIVE, "max_grad_norm": NON_NEGATIVE, "adam_beta1": UNIT, "adam_beta2": UNIT,
    "adam_epsilon": POSITIVE, "label_smoothing_factor": UNIT, "save_total_limit": AT_LEAST_1,
    "dataloader_num_workers": NON_NEGATIVE, "max_length": AT_LEAST_1, "dataset_num_proc": AT_LEAST_1,
}


class PassthroughError(ValueError):
    """Problems with keys of a pass-through section: [(key, message)], reported one line per key."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


@cache
def dataclass_types(cls: type) -> dict[str, Any]:
    """{field name: type hint} of a dataclass's constructor arguments."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


@cache
def _adapter(tp: Any):
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # a type pydantic cannot describe (a library class): names are still checked
        return None


def _enum_choices(tp: Any) -> list[str] | None:
    """`SchedulerType | str`: the library converts the string to the enum, so only the enum's values are valid."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if len(enums) == 1 and set(args) == {enums[0], str}:
        return [str(m.value) for m in enums[0]]
    return None


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _range_problem(value: Any, rng: Range) -> str | None:
    low, low_incl, high, high_incl, extra = rng
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value in extra:
        return None
    if low is not None and (value < low or (value == low and not low_incl)):
        bound = f">= {low}" if low_incl else f"> {low}"
    elif high is not None and (value > high or (value == high and not high_incl)):
        bound = f"<= {high}" if high_incl else f"< {high}"
    else:
        return None
    also = f" (or {', '.join(map(str, extra))})" if extra else ""
    return f"must be {bound}{also}, got {value!r}"


def check_value(key: str, value: Any, tp: Any, rng: Range | None = None) -> Any:
    """The value converted to the field's type (numbers from strings), or ValueError saying what was expected."""
    choices = _enum_choices(tp)
    if choices is not None and isinstance(value, str):
        if value not in choices:
            near = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (expected one of: {', '.join(choices)})"
            raise ValueError(f"{value!r} is not a valid choice{hint}")
        return value
    adapter = _adapter(tp)
    out = value
    if adapter is not None:
        from pydantic import ValidationError

        try:
            converted = adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            raise ValueError(f"expected {_describe(tp)}, got {value!r} ({first})") from None
        # keep what the user wrote unless it was text standing for a number or a truth value
        if isinstance(value, str) and isinstance(converted, (int, float)):
            out = converted
    problem = _range_problem(out, rng) if rng else None
    if problem:
        raise ValueError(problem)
    return out


def check_section(values: dict[str, Any], types: dict[str, Any], what: str, ranges: dict[str, Range] | None = None,
                  owned: dict[str, str] | None = None, extra_ok: bool = False) -> dict[str, Any]:
    """`values` checked against `types` (a library's field names -> types): unknown keys (with a close match), wrong
    types and out-of-range values all reported at once. Returns the values with numbers converted. `extra_ok`: the
    library passes unknown keys on (**kwargs), so only the known ones are checked."""
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    for key, value in values.items():
        if owned and key in owned:
            problems.append((key, f"set it at the top level ({owned[key]}: ...)"))
        elif key not in types and extra_ok:
            out[key] = value
        elif key not in types:
            near = difflib.get_close_matches(key, types, n=3)
            problems.append((key, f"unknown {what} key" + (f" (did you mean {', '.join(near)}?)" if near else "")))
        else:
            try:
                out[key] = check_value(key, value, types[key], (ranges or {}).get(key))
            except ValueError as exc:
                problems.append((key, str(exc)))
    if problems:
        raise PassthroughError(problems)
    return out


def sft_types() -> dict[str, Any]:
    from trl import SFTConfig

    return dataclass_types(SFTConfig)


@cache
def signature_types(func: Any) -> dict[str, Any]:
    """{parameter: type hint} of a function's named parameters (not self, *args, **kwargs)."""
    import inspect

    hints = typing.get_type_hints(func)
    return {name: hints.get(name, Any) for name, p in inspect.signature(func).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def hflm_types() -> dict[str, Any]:
    from lm_eval.models.huggingface import HFLM

    return signature_types(HFLM.__init__)
