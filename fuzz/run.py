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
    from tests.reliability import test_fuzz_wire

    props.update(test_fuzz_wire.PROPERTIES)
    from tests.core import test_clienthello as ch

    def clienthello(data: bytes) -> None:
        result = ch.parse_or_error(data)
        assert result is None or isinstance(result, (ch.ClientHello, ch.ClientHelloError))
        if isinstance(result, ch.ClientHello):
            assert data.startswith(result.raw)

    props["clienthello-mutated"] = (clienthello, ch.mutated_hello())
    props["clienthello-random"] = (clienthello, st.binary(max_size=2000))
    try:  # the flow-file loader's own properties (tests/core/test_flowfile.py), when that module has them
        from tests.core import test_flowfile as ff

        def flowfile_bytes(data: bytes) -> None:
            ff.only_flows_or_flowfile_error(data)
            ff.only_flows_or_flowfile_error(ff.VALID[0] + data)  # after a valid header

        props["flowfile-random"] = (flowfile_bytes, st.binary(max_size=2000))

        @st.composite
        def mutated_flowfile(draw: st.DrawFn) -> bytes:
            lines = list(ff.VALID)
            i = draw(st.integers(1, len(lines) - 1))
            lines[i] = test_fuzz.mutate(draw, lines[i], most=5)
            return b"".join(lines)

        props["flowfile-mutated"] = (ff.only_flows_or_flowfile_error, mutated_flowfile())
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
    p.add_argument("--silence", type=float, default=None,
                   help="seconds of quiet before the socket properties half-close (default 0.15)")
    args = p.parse_args()
    if args.silence is not None:
        os.environ["INTERPOSE_FUZZ_SILENCE_S"] = str(args.silence)
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
        from tests.reliability import test_fuzz, test_fuzz_wire

        test_fuzz.stop_shared_proxy()
        test_fuzz_wire.stop_socks_proxies()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
