"""Read W&B offline runs back (tests only): the run record (project, group, job_type, name) and the summary keys, from
the `.wandb` file (a LevelDB-style log of protobuf records: 32 KiB blocks, 7-byte record headers)."""

from __future__ import annotations

import struct
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    pos, pending, out = 7, b"", []
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # block trailer too short for a header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
        elif kind == 0 and length == 0:
            break
    return out


def offline_runs(wandb_dir: Path) -> list[dict]:
    """Every offline run under `wandb_dir` (WANDB_DIR/wandb): project, group, job_type, name, summary keys."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs = []
    for run_file in sorted(Path(wandb_dir).glob("offline-run-*/run-*.wandb")):
        info: dict = {"dir": run_file.parent, "summary": set()}
        for raw in _records(run_file):
            rec = pb.Record()
            rec.ParseFromString(raw)
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r = rec.run
                info.update(project=r.project, group=r.run_group, job_type=r.job_type, name=r.display_name)
            elif kind == "summary":
                info["summary"] |= {u.key or "/".join(u.nested_key) for u in rec.summary.update}
        runs.append(info)
    return runs
