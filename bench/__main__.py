"""``make bench``: every benchmark module under bench/ that defines ``run() -> dict``.

Each prints ratios measured side by side in one run and writes bench/results/<name>.json.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    selected = set(sys.argv[1:])
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (selected and info.name not in selected):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"== {info.name}", flush=True)
        result = module.run()
        result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (RESULTS / f"{info.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        for key, value in result.items():
            print(f"  {key}: {value}")


main()
