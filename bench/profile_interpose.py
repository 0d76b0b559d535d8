"""`python bench/run.py --profile DIR`: sample interpose-dump with py-spy under the load of case 1
(HTTP/1.1 keep-alive), case 2 (100 MiB downloads, MB/s) and case 3 (a TLS handshake per request),
and print where the time goes.

For each case it writes DIR/CASE.txt (py-spy's collapsed stacks, one line per stack: feed them to
flamegraph.pl or https://speedscope.app) and DIR/CASE.svg (a flame graph), and prints the functions
with the most samples: `self` (the function itself was running) and `total` (it was on the stack).
Needs py-spy (`pip install py-spy`); as non-root it may need `sudo` or ptrace permission.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import cases

RATE = 100  # samples per second (py-spy pauses the process for each one)
WARMUP = 1.5  # seconds of load before sampling starts (leaf certificates, upstream TLS context, ...)


def hot_spots(collapsed: str, top: int = 15) -> str:
    self_n: Counter[str] = Counter()
    total_n: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        samples += int(n)
        self_n[frames[-1]] += int(n)
        for f in set(frames):
            total_n[f] += int(n)
    out = [f"{samples} samples", "", "self %  function"]
    out += [f"{100 * n / samples:5.1f}  {f}" for f, n in self_n.most_common(top)]
    out += ["", "total %  function (on the stack)"]
    out += [f"{100 * n / samples:5.1f}  {f}" for f, n in total_n.most_common(top + 25)]
    return "\n".join(out)


def record(pid: int, seconds: float, out: str, fmt: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
                             str(RATE), "--function", "--format", fmt, "--output", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile_case(b: cases.Bench, name: str, load: Any, outdir: str) -> None:
    p = b.start("interpose")
    try:
        seconds = max(b.duration, 6.0)
        txt, svg = os.path.join(outdir, f"{name}.txt"), os.path.join(outdir, f"{name}.svg")
        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(load(p, WARMUP + seconds + 4)))
        worker.start()
        time.sleep(WARMUP)
        spies = [record(p.pid, seconds, txt, "raw")]
        spies[0].wait()
        spies.append(record(p.pid, min(seconds, 2), svg, "flamegraph"))
        spies[1].wait()
        worker.join()
        for s in spies:
            if s.returncode != 0:
                err = s.stderr.read().decode(errors="replace") if s.stderr else ""
                sys.exit(f"py-spy failed: {err.strip()}")
        with open(txt) as f:
            report = hot_spots(f.read())
        print(f"\n== {name}: interpose under load ({result.get('rate', 0):,.0f}/s while sampled); {txt}, {svg}")
        print(report)
    finally:
        p.stop()


def run(b: cases.Bench, outdir: str, only: list[str] | None = None) -> None:
    """`only`: some of http1, download, tls-handshake (the case names of bench/run.py)."""
    if not shutil.which("py-spy"):
        sys.exit("py-spy not found: `pip install py-spy`")
    os.makedirs(outdir, exist_ok=True)

    def http1(p: Any, seconds: float) -> dict[str, Any]:
        return cases.wrk(b, p.port, seconds)

    def tls(p: Any, seconds: float) -> dict[str, Any]:
        saved, b.duration = b.duration, seconds
        try:
            return cases.client(b, "tls-handshake", p, "--workers", "32", "--warmup", "0")
        finally:
            b.duration = saved

    def download(p: Any, seconds: float) -> dict[str, Any]:
        deadline, mb, t0 = time.monotonic() + seconds, 0.0, time.monotonic()
        while time.monotonic() < deadline:
            subprocess.run(["curl", "-sf", "-x", f"http://127.0.0.1:{p.port}", "-o", "/dev/null",
                            f"http://127.0.0.1:{b.origin.http_port}/100m"], check=True)
            mb += 100 * 1.048576
        return {"rate": mb / (time.monotonic() - t0)}

    for name, label, load in (("http1", "case1-http1", http1), ("download", "case2-download", download),
                              ("tls-handshake", "case3-tls-handshake", tls)):
        if only is None or name in only:
            profile_case(b, label, load, outdir)
