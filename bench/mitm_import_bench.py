"""Import a large mitmproxy flow file: peak RSS and time of reading it.

    python bench/mitm_import_bench.py                  # a 1 GiB file in a temporary directory
    python bench/mitm_import_bench.py --size-mb 200 --keep /tmp/big.flows

The file is made from the real mitmproxy 11 recording in tests/data/mitmproxy/ (its HTTP, WebSocket and
TCP flows), each copy with a new id and a response body of a varying size (most 4-64 KiB, one in 200
of 1 MiB, and one flow of 64 MiB), written with our tnetstring writer. Then two child processes, each
timed and measured for peak RSS (`ru_maxrss` of the child):

- `reader`: `interpose.store.mitmfile.Reader` over the file, counting flows (the parser and converter);
- `interpose-dump -r FILE -q`: the whole `-r` path (every flow through the addons' hooks).

With `--tui`, also the terminal UI, in a pty (tests/tui/pty_harness.py), recording into its temporary session:
`interpose -r FILE` until the status bar counts every flow, and `L` with the file's name until it says it
loaded them; for each the time, the peak RSS (VmHWM) and the RSS at the end, and for `L` the slowest of the
keys (down/up) sent once a second meanwhile.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from interpose.store.tnetstring import dumps, records  # noqa: E402

SOURCE = os.path.join(ROOT, "tests", "data", "mitmproxy", "mitm11.flows")


def generate(path: str, size: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    with open(SOURCE, "rb") as f:
        templates = [v for _, v in records(f)]
    n = written = 0
    big_done = False
    with open(path, "wb") as out:
        while written < size:
            state = dict(templates[n % len(templates)])
            state["id"] = f"00000000-0000-4000-8000-{n:012d}"
            if state.get("response"):
                if not big_done and written > size // 2:
                    body_len, big_done = 64 << 20, True
                elif rng.random() < 0.005:
                    body_len = 1 << 20
                else:
                    body_len = rng.randrange(4 << 10, 64 << 10)
                state["response"] = dict(state["response"], content=bytes([97 + n % 26]) * body_len)
            data = dumps(state)
            out.write(data)
            written += len(data)
            n += 1
    return n


READER = """
import sys
from interpose.store.mitmfile import Reader
r = Reader(sys.argv[1])
for _ in r:
    pass
print(r.count)
"""


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB and stdout+stderr tail of a child process (one at a time, so RUSAGE_CHILDREN's
    maximum is this child's, as long as it is the largest so far; each runs in its own wrapper to be sure)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode); "
               "print((p.stdout + p.stderr)[-300:])")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True).stdout
    first, _, rest = out.partition("\n")
    secs, kib, code = first.split()
    if code != "0":
        raise RuntimeError(f"{cmd[:3]} exited {code}: {rest}")
    return float(secs), int(kib) / 1024, rest.strip()


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


async def tui(path: str, flows: int, how: str) -> str:
    """`interpose -r FILE` (how="-r") or `L` FILE (how="L") in a pty: seconds, VmHWM and VmRSS (MiB)."""
    from tests.tui.pty_harness import Terminal

    term = Terminal(120, 35)
    conf = tempfile.mkdtemp()
    t0 = time.monotonic()
    keys = [0.0]
    try:
        if how == "-r":
            await term.start("-r", path, "--confdir", conf)
            done = f"flows: {flows}/{flows}"
        else:
            await term.start("--confdir", conf)
            await term.press("L")
            await term.wait_for("Load flows from")
            term.send(path)
            t0 = time.monotonic()
            await term.press("enter")
            done = f"loaded {flows} flows"
        while done not in term.text():
            await asyncio.sleep(1)
            k = time.monotonic()
            term.send("down" if len(keys) % 2 else "up")
            await term.settle(0.05, 5)
            keys.append(time.monotonic() - k - 0.05)
        secs = time.monotonic() - t0
        assert term.proc is not None
        st = _status(term.proc.pid)
    finally:
        await term.stop()
    return (f"{secs:6.1f} s  peak RSS {st['VmHWM']:5d} MiB, RSS at the end {st['VmRSS']} MiB, slowest key meanwhile "
            f"{max(keys) * 1000:.0f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=1024)
    p.add_argument("--keep", help="write the file here and keep it")
    p.add_argument("--tui", action="store_true", help="also the terminal UI: -r FILE, and L")
    args = p.parse_args()
    tmp = tempfile.mkdtemp()
    path = args.keep or os.path.join(tmp, "big.flows")
    t = time.monotonic()
    flows = generate(path, args.size_mb << 20)
    size = os.path.getsize(path)
    print(f"generated {path}: {size / (1 << 20):.0f} MiB, {flows} flows in {time.monotonic() - t:.0f} s")
    try:
        secs, rss, out = measure([sys.executable, "-c", READER, path])
        print(f"reader:                 {secs:6.1f} s  {size / (1 << 20) / secs:5.1f} MiB/s  peak RSS {rss:5.0f} MiB"
              f"  ({out} flows)")
        secs, rss, out = measure([sys.executable, "-m", "interpose.cli.dump", "-p", "0", "-q",
                                  "--confdir", os.path.join(tmp, "conf"), "-r", path])
        print(f"interpose-dump -r -q:   {secs:6.1f} s  {size / (1 << 20) / secs:5.1f} MiB/s  peak RSS {rss:5.0f} MiB")
        if args.tui:
            print(f"interpose -r (TUI):     {asyncio.run(tui(path, flows, '-r'))}", flush=True)
            print(f"interpose, L (TUI):     {asyncio.run(tui(path, flows, 'L'))}", flush=True)
    finally:
        if not args.keep:
            os.unlink(path)
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
