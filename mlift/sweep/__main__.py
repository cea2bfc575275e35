"""`python -m mlift.sweep data-sources DIR`: used inside train jobs (prints the built dataset's train sources)."""

import json
import sys

from mlift.sweep.sources import data_sources

if len(sys.argv) == 3 and sys.argv[1] == "data-sources":
    print(json.dumps(data_sources(sys.argv[2])))
    raise SystemExit(0)
print("usage: python -m mlift.sweep data-sources RUN_DIR", file=sys.stderr)
raise SystemExit(2)
