"""Read shard j of n of a corpus once: byte ranges over local files, the dataset's own shards for HF datasets.

Byte ranges: the files of a source, in sorted order, are one byte stream of T bytes; shard j owns [j*T//n, (j+1)*T//n).
It seeks to its start, skips to the next line start, and reads lines until a line would start at or past its end: a
line belongs to the shard where it starts, so lines straddling a boundary are read once, and the union over shards is
every line exactly once, in file order. Whole-file units (text files as documents, parquet) go to the shard whose
range holds the file's first byte.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ByteRanges:
    files: list[Path]
    j: int
    n: int

    def __post_init__(self) -> None:
        if not 0 <= self.j < self.n:
            raise ValueError(f"shard {self.j} of {self.n}: need 0 <= j < n")
        self.sizes = [os.path.getsize(p) for p in self.files]
        total = sum(self.sizes)
        self.lo, self.hi = self.j * total // self.n, (self.j + 1) * total // self.n


def iter_lines(r: ByteRanges) -> Iterator[tuple[Path, int, bytes]]:
    """(file, byte offset in the file, raw line with its newline) for every line that starts in the shard's range."""
    base = 0
    for path, size in zip(r.files, r.sizes):
        a, b = max(r.lo - base, 0), min(r.hi - base, size)
        base += size
        if a >= b:
            continue
        with open(path, "rb") as fh:
            if a > 0:
                fh.seek(a - 1)
                if fh.read(1) != b"\n":
                    fh.readline()  # the rest of a line that started before our range: the previous shard's
            pos = fh.tell()
            while pos < b:
                line = fh.readline()
                if not line:
                    break
                yield path, pos, line
                pos += len(line)


def file_owner(files: list[Path], k: int, n: int) -> int:
    """The shard that reads file k whole: the one whose byte range holds the file's first byte."""
    sizes = [os.path.getsize(p) for p in files]
    total = sum(sizes)
    if total == 0:
        return k % n
    start = sum(sizes[:k])
    j = min(n - 1, start * n // total)
    while j > 0 and j * total // n > start:  # integer rounding at range starts
        j -= 1
    while j < n - 1 and (j + 1) * total // n <= start:
        j += 1
    return j


def hf_shard(ds, j: int, n: int):
    """(part of `ds` for shard j of n, global index of its first row or None). Streaming datasets are split by their
    own shards (files) when they have at least n; otherwise every shard streams all and keeps every n-th row
    (datasets.distributed.split_dataset_by_node), which is said on stderr."""
    if n == 1:
        return ds, 0
    from datasets import IterableDataset

    if isinstance(ds, IterableDataset):
        if ds.num_shards >= n:
            return ds.shard(num_shards=n, index=j, contiguous=True), None
        from datasets.distributed import split_dataset_by_node

        print(f"mlift: the dataset has {ds.num_shards} shard(s) < {n} input shards: each shard streams all of it and "
              f"keeps every {n}-th row", file=sys.stderr)
        return split_dataset_by_node(ds, rank=j, world_size=n), None
    div, mod = divmod(len(ds), n)
    return ds.shard(num_shards=n, index=j, contiguous=True), div * j + min(j, mod)
