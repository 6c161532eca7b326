"""Are two analyses of one run the same? Compares the products (STAGE.json, cagejumps.csv.gz) of two run
directories value by value, ignoring when they were made: the check a refactoring of the analysis must
pass ("products must not change"), run on copies of the tiny presets' runs analysed before and after.

    python analysis/validation/same_products.py BEFORE_RUNDIR AFTER_RUNDIR     # exit 1 where any differs
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

#: keys that say when or by what a product was made, not what it holds
WHEN = ("time", "elapsed", "seconds", "made", "created", "lmpshear_version")


def differences(a, b, path: str = "") -> list[str]:
    """Where two parsed JSON values differ (NaN equals NaN; floats compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in one" for k in set(a) ^ set(b)]
        return out + [d for k in a.keys() & b.keys() if k not in WHEN for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items, {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(before: Path, after: Path) -> int:
    products = sorted(p.name for p in before.glob("*.json") if p.name not in ("status.json", "manifest.json"))
    failed = 0
    for name in products:
        other = after / name
        found = (
            ["missing"]
            if not other.exists()
            else differences(json.loads((before / name).read_text()), json.loads(other.read_text()))
        )
        failed += bool(found)
        print(f"{name}: {'same' if not found else '; '.join(found[:5])}")
    for table in sorted(before.glob("*.csv.gz")):
        same = (after / table.name).exists() and gzip.open(table).read() == gzip.open(after / table.name).read()
        failed += not same
        print(f"{table.name}: {'same' if same else 'DIFFERS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2])))
