"""W&B runs for the jobs that are not training (data builds, eval, report). Training logs through transformers'
WandbCallback (see mlift/train/sft.py); both use the same switches:

- a project: `WANDB_PROJECT` in the environment (the standard W&B variable; `mlift sweep` sets it when the sweep has a
  `wandb:` section) or an explicit one (`mlift report --wandb-project`); none means off, silently;
- the group: `WANDB_RUN_GROUP` (a sweep sets its name), so the runs of one experiment sit together in the UI;
- `WANDB_MODE=offline` works without a login; `disabled`, a missing wandb package or a missing login turn logging off
  with one clear line and the job goes on.

Configs are manifests and recipes, which hold API-key variable *names* only, never keys.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def wandb_key_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    try:
        auth = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in auth)


def wandb_off_reason() -> str | None:
    """None when wandb can log here; else why not (one line for the user)."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        return "wandb is not installed (pip install wandb)"
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode == "disabled":
        return "WANDB_MODE=disabled"
    if mode not in ("offline", "dryrun") and not wandb_key_present():
        return "not logged in (no WANDB_API_KEY / netrc entry); run `wandb login` or set WANDB_MODE=offline"
    return None


def run_name(path: str | Path) -> str:
    """A readable run name from an output dir: its last two components (`data/templated`, `alpaca/seed0`)."""
    parts = Path(path).resolve().parts
    return "/".join(parts[-2:])


def log_job(job_type: str, name: str, config: dict[str, Any], summary: dict[str, Any] | None = None,
            tables: dict[str, tuple[Sequence[str], list[list[Any]]]] | None = None, images: Sequence[Path] = (),
            project: str | None = None, group: str | None = None) -> str | None:
    """One finished job as one W&B run: config, summary metrics, tables (name -> (columns, rows)) and images.
    Returns the run's directory, or None when logging is off."""
    project = project or os.environ.get("WANDB_PROJECT")
    if not project:
        return None
    why = wandb_off_reason()
    if why:
        print(f"W&B off: {why}; the {job_type} job goes on without it")
        return None
    import wandb

    run = wandb.init(project=project, group=group or os.environ.get("WANDB_RUN_GROUP"), job_type=job_type,
                     name=os.environ.get("WANDB_NAME") or name, config=config)
    payload: dict[str, Any] = {key: wandb.Table(columns=list(cols), data=[list(r) for r in rows])
                               for key, (cols, rows) in (tables or {}).items()}
    payload.update({f"plot/{p.stem}": wandb.Image(str(p)) for p in images})
    if payload:
        run.log(payload)
    for key, value in (summary or {}).items():
        run.summary[key] = value
    run_dir = run.dir
    print(f"W&B: {job_type} run {run.name} in project {project} (group {run.group}); files in {run_dir}")
    run.finish()
    wandb.teardown()  # wandb caches its settings (WANDB_DIR, mode) per process; a later run must read them afresh
    return run_dir
