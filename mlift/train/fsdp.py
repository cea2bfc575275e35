"""FSDP on CPU, for tests and CPU-only clusters, and the final gather of an FSDP model.

accelerate 1.16 turns `distributed_type: FSDP` into FSDP only for GPU-like distributed types (state.py: the
MULTI_GPU/NPU/XPU/... branch); on CPU it silently trains plain DDP. torch's FSDP2 (`fully_shard`) itself runs on CPU
with gloo, so `enable_fsdp_on_cpu` promotes the MULTI_CPU state to FSDP when the launcher asked for FSDP. FSDP1 on
CPU does not get this far (torch refuses accelerate's `device_id` "cpu" against its compute device "cpu:0"), so the
shipped config is FSDP2, as accelerate recommends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_PATCHED = False


def fsdp_requested() -> bool:
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def enable_fsdp_on_cpu() -> None:
    """Before the Trainer builds its Accelerator: where the launcher asked for FSDP and the processes are CPU ones,
    the accelerator state becomes FSDP with the plugin accelerate built from the launcher's settings."""
    global _PATCHED
    if _PATCHED or not fsdp_requested():
        return
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__

    def init(self, *args: Any, fsdp_plugin: Any = None, **kwargs: Any) -> None:
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    AcceleratorState.__init__ = init
    _PATCHED = True


def fsdp_summary(trainer: Any) -> dict[str, Any] | None:
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None) if trainer.is_fsdp_enabled else None
    if plugin is None:
        return None
    sharding = plugin.sharding_strategy if plugin.fsdp_version == 1 else (
        "FULL_SHARD" if plugin.reshard_after_forward else "SHARD_GRAD_OP")
    return {"version": plugin.fsdp_version, "sharding": str(sharding), "state_dict_type": str(plugin.state_dict_type),
            "device": trainer.args.device.type}


def save_fsdp_model(trainer: Any, out: Path) -> None:
    """The final model (or adapter) gathered from the shards and written by rank 0. On GPU the Trainer's own path
    (full state dict offloaded to CPU); on CPU that offload is a no-op and the gathered tensors share freed storage
    (safetensors: "invalid python storage"), so the full state dict is cloned first."""
    trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")  # sharded while training
    if trainer.args.device.type != "cpu":
        trainer.save_model(str(out))
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(trainer.model_wrapped, options=StateDictOptions(full_state_dict=True))
    state = {key: tensor.detach().clone() for key, tensor in state.items()}
    if trainer.args.should_save:
        trainer._save(str(out), state_dict=state)  # the Trainer's own writer: adapter or model, tokenizer, args
