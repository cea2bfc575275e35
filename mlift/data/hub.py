"""Loading one config of a hub dataset, script datasets included.

datasets >= 4 refuses loading scripts, and some datasets the recipes name are still scripts on the hub
(csebuetnlp/xlsum). The hub keeps a parquet export of them at the revision `refs/convert/parquet`, laid out as
`<config>/<split>/NNNN.parquet` with no dataset card, so there the config is a folder (`data_dir`), not a name.
A mirror (e.g. olah serving git repositories to an offline cluster) holds the script-free copy on its main branch
instead (olah 0.5.4 cannot serve a revision with slashes, and answers a missing README with 401, so that copy carries a
README `configs:` block). `load_config` takes main when it loads and falls back to the export only when main is a
script, and says which revision it used.
"""

from __future__ import annotations

import sys
from typing import Any

PARQUET_EXPORT = "refs/convert/parquet"
_SCRIPT_REFUSED = "Dataset scripts are no longer supported"


def load_config(hub_id: str, config: str | None, split: str, revision: str | None = None,
                streaming: bool = False) -> tuple[Any, str | None]:
    """(the split, the revision it came from). `revision=refs/convert/parquet` reads the export directly."""
    import datasets

    if revision == PARQUET_EXPORT:
        return datasets.load_dataset(hub_id, revision=revision, data_dir=config, split=split,
                                     streaming=streaming), revision
    try:
        return datasets.load_dataset(hub_id, config, split=split, revision=revision, streaming=streaming), revision
    except RuntimeError as exc:
        if _SCRIPT_REFUSED not in str(exc) or revision not in (None, "main"):
            raise
    print(f"mlift: {hub_id} is a loading script on the hub (datasets>=4 refuses scripts): reading its parquet export "
          f"({PARQUET_EXPORT}, {config}/{split})", file=sys.stderr)
    return datasets.load_dataset(hub_id, revision=PARQUET_EXPORT, data_dir=config, split=split,
                                 streaming=streaming), PARQUET_EXPORT
