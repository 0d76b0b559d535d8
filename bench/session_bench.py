"""What recording a session costs: bench/run.py's HTTP/1.1 keep-alive and 100 MiB download cases against
`interpose-dump` and `interpose-dump --session FILE`, alternated (ABBA) in one run.

    python bench/session_bench.py [--rounds 2] [--duration 4] [--base REV [--base-plain]]

With `--base REV` (a git revision) the same cases also run against that revision's `interpose-dump
--session` (from a `git archive` of it under the temporary directory), so an older recorder and this one
are compared in the same run; `--base-plain` adds that revision's `interpose-dump` without a session (to
see what a change costs or buys the proxy without a session).

Needs what bench/run.py needs (wrk, nginx, curl); mitmdump is not used. Prints one table (median of the
rounds; the target is at most 10 % slower with --session) and, per recorded session, its size.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases  # noqa: E402
from origin import start_nginx  # noqa: E402

TARGETS = ("interpose", "interpose+session")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"http1": ("1 HTTP/1.1 keep-alive 1 KiB, 50 conns", "req/s"), "download": ("2 100 MiB download", "MB/s")}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--base", help="also run this git revision's interpose-dump --session")
    p.add_argument("--cases", default=",".join(CASES), help="which cases, comma-separated (http1, download)")
    p.add_argument("--base-plain", action="store_true", help="with --base: also its interpose-dump without a session")
    args = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="interpose-session-bench-")
    targets = TARGETS
    if args.base:
        base = os.path.join(tmp, "base")
        lay_out(args.base, base)
        os.environ["INTERPOSE_BENCH_BASE"] = base
        targets = (*TARGETS, "base+interpose+session", *(("base+interpose",) if args.base_plain else ()))
    origin = start_nginx(tmp)
    b = cases.Bench(origin, tmp, args.duration, 0, None, lambda m: print(m, file=sys.stderr, flush=True))
    chosen = {c: CASES[c] for c in args.cases.split(",")}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {c: {t: [] for t in targets} for c in chosen}
    try:
        for name in targets:  # the first start makes the CA
            b.start(name).stop()
        for case in chosen:
            fn, _ = cases.CASES[case]
            for r in range(args.rounds):
                for target in targets if r % 2 == 0 else reversed(targets):
                    res = fn(b, target)
                    b.log(f"  {case:9} {target:18} {res}")
                    results[case][target].append(res)
        sizes = [os.path.getsize(f) for f in glob.glob(os.path.join(tmp, "conf-interpose+session", "*.session"))]
    finally:
        origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    base_cols = f" {args.base} with --session | change |" if args.base else ""
    print("| case | interpose-dump | with --session | change |" + base_cols)
    print("|---|---|---|---|" + ("---|---|" if args.base else ""))
    for case, (label, unit) in chosen.items():
        def median(target: str, key: str = "rate", case: str = case) -> float:
            return statistics.median(x.get(key) or 0.0 for x in results[case][target])
        a, s = median("interpose"), median("interpose+session")
        line = f"| {label} | {a:,.1f} {unit} | {s:,.1f} {unit} | {100 * (s - a) / a:+.1f} % |"
        if args.base:
            o = median("base+interpose+session")
            line += f" {o:,.1f} {unit} | {100 * (o - a) / a:+.1f} % |"
            if args.base_plain:
                bp = median("base+interpose")
                line += f" (base without a session: {bp:,.1f} {unit}, {100 * (bp - a) / a:+.1f} %)"
        print(line)
        cpu = {t: median(t, "cpu_us_per_op") for t in targets}
        print(f"|   proxy CPU per op (µs) | {' | '.join(f'{t}: {v:,.0f}' for t, v in cpu.items())} |")
    if sizes:
        print(f"\nsession files: {len(sizes)}, largest {max(sizes) / 1e6:.1f} MB")


def lay_out(rev: str, dest: str) -> None:
    """`git archive REV` into `dest`, with `dest/pkg/interpose` laid out as the package maps its folders
    (core, core/tui, core/addons), so PYTHONPATH=dest/pkg imports that revision."""
    os.makedirs(os.path.join(dest, "pkg"))
    archive = subprocess.run(["git", "-C", REPO, "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    os.symlink("../core", os.path.join(dest, "pkg", "interpose"))
    os.symlink("../tui", os.path.join(dest, "core", "tui"))
    os.symlink("../addons", os.path.join(dest, "core", "addons"))


if __name__ == "__main__":
    main()
