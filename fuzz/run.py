"""Longer fuzzing runs of the properties in tests/reliability/test_fuzz.py (and the flow-file loader's).

    python fuzz/run.py                                  # every property, 5000 examples each, 15 min at most
    python fuzz/run.py http1-grammar --examples 50000 --budget 3600
    python fuzz/run.py --list

The test suite runs each property with 150 examples; this runs the same property functions on the same
strategies, in rounds of `--chunk` examples (each round a fresh hypothesis run with new random choices),
until `--examples` ran or the `--budget` (seconds, for the whole run) is spent. Failures are saved in
hypothesis's example database (`.hypothesis/`, gitignored) and replayed first next time, by this script
and by pytest. Exit status 1 if any property failed; the falsifying input is printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Property = tuple[Callable[[Any], None], st.SearchStrategy[Any]]


def properties() -> dict[str, Property]:
    from tests.reliability import test_fuzz

    props: dict[str, Property] = dict(test_fuzz.PROPERTIES)
    try:  # the flow-file loader's own properties (tests/core/test_flowfile.py), when that module has them
        from tests.core import test_flowfile as ff

        def flowfile_bytes(data: bytes) -> None:
            ff.only_flows_or_flowfile_error(data)
            ff.only_flows_or_flowfile_error(ff.VALID[0] + data)  # after a valid header

        props["flowfile-random"] = (flowfile_bytes, st.binary(max_size=2000))
    except (ImportError, AttributeError) as e:
        print(f"(flow-file properties not available: {e})", file=sys.stderr)
    return props


def run_one(name: str, prop: Property, examples: int, chunk: int, deadline: float) -> tuple[int, str | None]:
    """Run `prop` until `examples` ran or the deadline passed; (examples run, failure text or None)."""
    check, strategy = prop
    done = 0
    while done < examples and time.monotonic() < deadline:
        n = min(chunk, examples - done)
        test = settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck),
                        print_blob=True)(given(strategy)(check))
        try:
            test()
        except Exception:
            return done, traceback.format_exc(limit=-3)
        done += n
    return done, None


def main() -> None:
    p = argparse.ArgumentParser(description="Run the reliability fuzz properties for longer.")
    p.add_argument("names", nargs="*", help="properties to run (default: all; see --list)")
    p.add_argument("--examples", type=int, default=5000, help="examples per property (default 5000)")
    p.add_argument("--chunk", type=int, default=1000, help="examples per hypothesis run (default 1000)")
    p.add_argument("--budget", type=float, default=900, help="seconds for the whole run (default 900)")
    p.add_argument("--list", action="store_true", help="list the properties and exit")
    args = p.parse_args()
    props = properties()
    if args.list:
        print("\n".join(props))
        return
    unknown = [n for n in args.names if n not in props]
    if unknown:
        p.error(f"unknown properties: {', '.join(unknown)} (have: {', '.join(props)})")
    names = args.names or list(props)
    deadline = time.monotonic() + args.budget
    failed = 0
    try:
        for name in names:
            t0 = time.monotonic()
            ran, failure = run_one(name, props[name], args.examples, args.chunk, deadline)
            status = "FAILED" if failure else "ok"
            print(f"{name:18} {status:6} {ran:7d} examples  {time.monotonic() - t0:7.1f} s", flush=True)
            if failure:
                failed += 1
                print(failure, flush=True)
    finally:
        from tests.reliability import test_fuzz

        test_fuzz.stop_shared_proxy()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
