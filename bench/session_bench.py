"""What recording a session costs: bench/run.py's HTTP/1.1 keep-alive and 100 MiB download cases against
`interpose-dump` and `interpose-dump --session FILE`, alternated (ABBA) in one run.

    python bench/session_bench.py [--rounds 2] [--duration 4]

Needs what bench/run.py needs (wrk, nginx, curl); mitmdump is not used. Prints one table (median of the
rounds; the target is at most 10 % slower with --session) and, per recorded session, its size.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases  # noqa: E402
from origin import start_nginx  # noqa: E402

TARGETS = ("interpose", "interpose+session")
CASES = {"http1": ("1 HTTP/1.1 keep-alive 1 KiB, 50 conns", "req/s"), "download": ("2 100 MiB download", "MB/s")}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=4.0)
    args = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="interpose-session-bench-")
    origin = start_nginx(tmp)
    b = cases.Bench(origin, tmp, args.duration, 0, None, lambda m: print(m, file=sys.stderr, flush=True))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {c: {t: [] for t in TARGETS} for c in CASES}
    try:
        for name in TARGETS:  # the first start makes the CA
            b.start(name).stop()
        for case in CASES:
            fn, _ = cases.CASES[case]
            for r in range(args.rounds):
                for target in TARGETS if r % 2 == 0 else reversed(TARGETS):
                    res = fn(b, target)
                    b.log(f"  {case:9} {target:18} {res}")
                    results[case][target].append(res)
        sizes = [os.path.getsize(f) for f in glob.glob(os.path.join(tmp, "conf-interpose+session", "*.session"))]
    finally:
        origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("| case | interpose-dump | with --session | change |")
    print("|---|---|---|---|")
    for case, (label, unit) in CASES.items():
        a = statistics.median(x["rate"] for x in results[case]["interpose"])
        s = statistics.median(x["rate"] for x in results[case]["interpose+session"])
        print(f"| {label} | {a:,.1f} {unit} | {s:,.1f} {unit} | {100 * (s - a) / a:+.1f} % |")
    if sizes:
        print(f"\nsession files: {len(sizes)}, largest {max(sizes) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
