"""Mutation fuzzing of the mitmproxy flow-file reader (tnetstring parser and flow converter).

    python fuzz/fuzz_tnetstring.py                       # 100,000 cases, seed 1
    python fuzz/fuzz_tnetstring.py --cases 1000000 --seed 7

Each case is one of the real files in tests/data/mitmproxy/ (mitmproxy 7 to 11) mutated: bytes flipped,
replaced, inserted or deleted, a length prefix changed, the file cut, records spliced from another version,
or plain random bytes. The property: reading it with `interpose.store.mitmfile.Reader` yields only flows
and then either ends or raises FlowFileError with a non-empty message; any other exception is a bug. No
atheris needed (the standard `random` module, so a run is reproducible from its seed). Failures are written
to fuzz/crashes-tnetstring/ (look at them, then delete them). Exit status 1 if any.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interpose.errors import FlowFileError  # noqa: E402
from interpose.model.flow import Flow  # noqa: E402
from interpose.store.mitmfile import Reader  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "mitmproxy")
_LENGTH = re.compile(rb"[0-9]+:")


def seeds() -> list[bytes]:
    return [open(os.path.join(DATA, n), "rb").read() for n in sorted(os.listdir(DATA)) if n.endswith(".flows")]


def mutate(rng: random.Random, files: list[bytes]) -> bytes:
    data = bytearray(rng.choice(files))
    kind = rng.randrange(8)
    if kind == 7:
        return rng.randbytes(rng.randrange(200))
    for _ in range(rng.choice((1, 1, 1, 2, 4, 16))):
        if not data:
            break
        i = rng.randrange(len(data))
        op = kind if kind < 6 else rng.randrange(6)
        if op == 0:  # flip a bit
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # a type byte or digit where something else was
            data[i] = rng.choice(b",;#^!~]}:0123456789")
        elif op == 2:  # insert
            data[i:i] = rng.randbytes(rng.randrange(1, 8))
        elif op == 3:  # delete a run
            del data[i:i + rng.randrange(1, 64)]
        elif op == 4:  # change a length prefix
            m = list(_LENGTH.finditer(data, max(0, i - 200), i + 200))
            if m:
                hit = rng.choice(m)
                data[hit.start():hit.end() - 1] = str(max(0, int(hit.group()[:-1]) + rng.randint(-3, 3))).encode()
        else:  # cut the file, or splice the tail of another
            other = rng.choice(files)
            data = data[:i] + (other[rng.randrange(len(other)):] if rng.random() < 0.5 else b"")
    return bytes(data)


def check(data: bytes) -> str:
    """How the reader ended: "read whole" or "FlowFileError" (anything else escapes: a bug)."""
    reader = Reader(io.BytesIO(data))
    try:
        for flow in reader:
            assert isinstance(flow, Flow)
    except FlowFileError as e:
        assert str(e), "an empty FlowFileError"
        return "FlowFileError"
    return "read whole"


def main() -> None:
    p = argparse.ArgumentParser(description="Fuzz the mitmproxy flow-file reader.")
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    files = seeds()
    start = time.monotonic()
    failures = 0
    outcomes = {"read whole": 0, "FlowFileError": 0}
    for n in range(args.cases):
        data = mutate(rng, files)
        try:
            outcomes[check(data)] += 1
        except Exception:  # noqa: BLE001  # the property: nothing else may escape
            failures += 1
            out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashes-tnetstring")
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, f"case-{args.seed}-{n}.flows"), "wb") as f:
                f.write(data)
            print(f"case {n}: {traceback.format_exc(limit=-3)}", file=sys.stderr)
    took = time.monotonic() - start
    print(f"{args.cases} cases (seed {args.seed}) in {took:.0f} s: {failures} failures; "
          f"read whole {outcomes['read whole']}, FlowFileError {outcomes['FlowFileError']}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
