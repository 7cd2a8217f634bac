"""Run every benchmark of the project and print one table of figures and ratios.

Each ``benchmarks/bench_*.py`` module exposes ``main(quick: bool) -> list[Row]``; this script
imports them in name order, runs them in this one process (so ratios compare like with like)
and prints a table. ``--quick`` shrinks sizes for a smoke run; ``--only NAME`` picks modules.

    python benchmarks/run.py            # full run, figures for docs/benchmarks.md
    python benchmarks/run.py --quick    # seconds, for CI
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Row, render  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], help="module name, e.g. engine")
    args = parser.parse_args()

    rows: list[Row] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if args.only and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.main(quick=args.quick))
    print(render(rows))
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
