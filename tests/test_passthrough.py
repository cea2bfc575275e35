"""Pass-through sections are typed by the library's own dataclass or signature (mlift.passthrough), so they follow
upgrades: Optional, unions, Literal, enums and lists are read from the type hints, numbers written as text converted."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal, Optional, Union

import pytest

from mlift.passthrough import POSITIVE, PassthroughError, check_section, dataclass_types, sft_types


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclasses.dataclass
class Lib:
    """Stands for a library's config dataclass (the real one, SFTConfig, is checked below)."""

    lr: float = 1e-3
    steps: int = 10
    name: Optional[str] = None  # noqa: UP045 (written as libraries write it)
    mode: Union[Mode, str] = "fast"  # noqa: UP007
    kind: Literal["a", "b"] = "a"
    tags: list[str] = dataclasses.field(default_factory=list)
    extra: Union[dict, str, None] = None  # noqa: UP007
    computed: int = dataclasses.field(default=0, init=False)


def check(values: dict, **kw) -> dict:
    return check_section(values, dataclass_types(Lib), "Lib", {"lr": POSITIVE}, **kw)


def problems(values: dict, **kw) -> dict[str, str]:
    with pytest.raises(PassthroughError) as exc:
        check(values, **kw)
    return dict(exc.value.problems)


def test_types_come_from_the_dataclass():
    assert set(dataclass_types(Lib)) == {"lr", "steps", "name", "mode", "kind", "tags", "extra"}  # not init=False
    assert check({"lr": "2e-4", "steps": "8", "name": None, "mode": "slow", "kind": "b", "tags": ["x"],
                  "extra": {"k": 1}}) == {"lr": 2e-4, "steps": 8, "name": None, "mode": "slow", "kind": "b",
                                          "tags": ["x"], "extra": {"k": 1}}


def test_each_wrong_value_is_named():
    found = problems({"lr": "1e-4x", "steps": "eight", "mode": "fsat", "kind": "c", "tags": "x", "lrr": 1,
                      "computed": 3, "name": 5})
    assert "expected float" in found["lr"] and "expected int" in found["steps"]
    assert "did you mean 'fast'" in found["mode"] and "kind" in found and "tags" in found and "name" in found
    assert "did you mean lr" in found["lrr"] and "unknown" in found["computed"]
    assert problems({"lr": -1})["lr"] == "must be > 0, got -1"
    assert check({"unknown_but_passed_on": 1}, extra_ok=True) == {"unknown_but_passed_on": 1}


def test_sft_types_are_sftconfig_fields_and_what_passes_sftconfig_accepts():
    types = sft_types()
    assert {"learning_rate", "num_train_epochs", "per_device_train_batch_size", "max_length", "report_to"} <= set(types)
    from trl import SFTConfig

    assert set(types) == {f.name for f in dataclasses.fields(SFTConfig) if f.init}
    out = check_section({"learning_rate": "5e-3", "report_to": ["wandb"], "max_length": None,
                         "lr_scheduler_type": "cosine", "optim": "adamw_torch"}, types, "SFTConfig")
    assert out["learning_rate"] == 5e-3 and out["lr_scheduler_type"] == "cosine"
    # what check_section accepts, SFTConfig accepts (the reference: the library itself)
    SFTConfig(output_dir="unused", use_cpu=True, bf16=False, **out)
