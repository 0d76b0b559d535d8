"""Benchmark interpose-dump against mitmdump and a direct connection, on loopback, in one run.

    python bench/run.py                      # everything, ~4-5 minutes; prints a markdown table
    python bench/run.py --only http1,h2      # some cases
    python bench/run.py --json out.json      # also keep every measurement
    python bench/run.py --profile DIR        # instead: py-spy profiles of interpose on cases 1, 2 and 3
    python bench/run.py --only tui1m         # instead: the TUI at a million flows (bench/tui_bench.py)

Needs wrk, nginx and curl (`sudo apt-get install -y wrk nginx-light curl`). mitmproxy 11.0.2 goes
into bench/.venv-mitm on the first run. The proxies run one after the other, alternating
(interpose, mitmdump, mitmdump, interpose, ...) so that drift on the machine hits both alike; each
measurement gets a freshly started proxy. See docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases
import proxies
from origin import start_nginx

MiB = 1 << 20
PROXIES = ("interpose", "mitmdump")
EXTRA: list[str] = []
"""Variants of interpose measured in the same run, alternated with the others (`--extra`, e.g.
`interpose+noreuse`: bench/proxies.py's VARIANTS)."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_tools() -> None:
    missing = [t for t in ("wrk", "nginx", "curl") if not (shutil.which(t) or os.path.exists(f"/usr/sbin/{t}"))]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: install with `sudo apt-get install -y wrk nginx-light curl`")
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self"):
        sys.exit("this benchmark needs Linux (/proc and CPU affinity)")


def machine() -> dict[str, str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        git = ["git", "-C", proxies.REPO]
        rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "core"],
                               capture_output=True, text=True, check=False).stdout.strip()
        commit = f"{rev}{' + uncommitted changes in core/' if dirty else ''}" if rev else "?"
    except OSError:
        commit = "?"
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "commit": commit}


def placement(pin: bool) -> tuple[set[int] | None, str]:
    """Pin each proxy to CPU 0 and everything else (this script, nginx, clients) to the other CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, f"not pinned ({len(cpus)} CPUs)"
    proxy_cpu, others = {cpus[0]}, set(cpus[1:])
    os.sched_setaffinity(0, others)
    return proxy_cpu, f"proxy on CPU {cpus[0]}, load generators and nginx on CPUs {sorted(others)}"


def order(rounds: int) -> list[str]:
    """interpose, mitmdump, mitmdump, interpose, interpose, mitmdump, ... (ABBA)."""
    seq: list[str] = []
    every = [*PROXIES, *EXTRA]
    for r in range(rounds):
        seq += every if r % 2 == 0 else list(reversed(every))
    return seq


def run_cases(b: cases.Bench, names: list[str], rounds: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in names:
        fn, direct = cases.CASES[name]
        n = {"startup": max(rounds, 3), "memory": 1}.get(name, rounds)
        targets = (["direct"] if direct else []) + order(n)
        results[name] = {t: [] for t in ["direct", *PROXIES, *EXTRA]}
        for target in targets:
            r = measure(b, name, fn, target)
            if r is not None and r.get("other_cpu", 0) > BUSY and name != "memory":  # RSS is not a rate
                log(f"  {'':14} {target:9} other processes kept {r['other_cpu']:.2f} CPUs busy: measuring again")
                again = measure(b, name, fn, target)
                if again is not None and again.get("other_cpu", 0) < r["other_cpu"]:
                    r = again
            if r is not None:
                results[name][target].append(r)
    return results


BUSY = 0.3  # CPUs kept busy by processes outside the benchmark above which a measurement is taken again
HIDDEN = ("VmRSS", "VmHWM", "idle_rss", "rss_after", "errors", "seconds", "client_loop", "workers", "streams",
          "window", "size")


QUIET = 0.15  # CPUs busy outside the benchmark below which the machine counts as quiet
WAIT = {"per_measurement": 30.0, "left": 240.0}  # how long to wait for a quiet machine: each time, in all


def measure(b: cases.Bench, name: str, fn: Any, target: str) -> dict[str, Any] | None:
    busy, waited = cases.wait_quiet(b, QUIET, min(WAIT["per_measurement"], WAIT["left"]))
    WAIT["left"] = max(0.0, WAIT["left"] - waited)
    if waited >= 1 or busy >= QUIET:
        log(f"  {'':14} {target:9} waited {waited:.0f} s for other processes to calm down (now {busy:.2f} CPUs)")
    t0 = time.perf_counter()
    try:
        r: dict[str, Any] = fn(b, target)
    except Exception as e:  # noqa: BLE001 - one failed measurement should not end the run
        log(f"  {name:14} {target:9} FAILED: {e}")
        return None
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items() if k not in HIDDEN)
    log(f"  {name:14} {target:9} {time.perf_counter() - t0:5.1f}s {shown}")
    return r


# --- the report -------------------------------------------------------------------------------

def agg(runs: list[dict[str, Any]], key: str, higher_better: bool) -> tuple[float, float] | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    if not vals:
        return None
    return statistics.mean(vals), (max(vals) if higher_better else min(vals))


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "MiB":
        return f"{v / MiB:.0f}"
    if unit == "s":
        return f"{v:.3f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


# (case, key, label, unit, higher is better, target: ("ratio", x) | ("max", value) | None)
ROWS = [
    ("http1", "rate", "1 HTTP/1.1 keep-alive 1 KiB, 50 conns: req/s", "", True, ("ratio", 3.0)),
    ("http1", "p50_ms", "1 … p50 latency ms", "", False, None),
    ("http1", "p99_ms", "1 … p99 latency ms", "", False, None),
    ("download", "rate", "2 100 MiB download: MB/s", "", True, ("ratio", 2.0)),
    ("download", "VmHWM", "2 … proxy peak RSS MiB", "MiB", False, ("max", 100 * MiB)),
    ("tls-handshake", "rate", "3 HTTPS, new TLS conn per request: handshakes/s", "", True, ("ratio", 2.5)),
    ("tls-resume", "rate", "3c HTTPS, new conn per request, sessions resumed: handshakes/s", "", True, None),
    ("tls-keepalive", "rate", "3b HTTPS keep-alive, 50 conns: req/s", "", True, ("ratio", 3.0)),
    ("h2", "rate", "4 HTTP/2, 100 streams on 1 conn: req/s", "", True, None),
    ("websocket", "rate", "5 WebSocket echo, 128 B, window 64: msgs/s", "", True, ("ratio", 2.0)),
    ("memory", "rss_after", "6 RSS after 20k flows MiB", "MiB", False, None),
    ("startup", "startup", "7 startup s (exec → accepting)", "s", False, ("max", 0.3)),
    ("startup", "idle_rss", "7 idle RSS MiB", "MiB", False, None),
]


def report(results: dict[str, Any], rounds: int, flows: int) -> tuple[str, list[dict[str, Any]]]:
    lines = [
        "| case | direct | interpose mean (best) | mitmdump mean (best) | interpose advantage | target | met |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for case, key, label, unit, higher, target in ROWS:
        if case not in results:
            continue
        res = results[case]
        if case == "memory":
            counts = [r["flows"] for t in PROXIES for r in res[t]]
            label = label.replace("20k flows", f"{min(counts, default=0):,}–{max(counts, default=0):,} flows"
                                  if counts and min(counts) != max(counts) else f"{min(counts, default=0):,} flows")
        d, i, m = (agg(res[t], key, higher) for t in ("direct", "interpose", "mitmdump"))
        adv = None
        if i and m and i[0] and m[0]:
            adv = i[0] / m[0] if higher else m[0] / i[0]
        tgt, met = "", ""
        if target and target[0] == "ratio":
            tgt = f"≥ {target[1]:g}× mitmdump"
            met = "–" if adv is None else "yes" if adv >= target[1] else "**no**"
        elif target and target[0] == "max":
            tgt = f"interpose ≤ {fmt(target[1], unit)}{' MiB' if unit == 'MiB' else ' s'}"
            met = "–" if i is None else "yes" if i[0] <= target[1] else "**no**"
        if target:
            verdicts.append({"case": label, "target": tgt, "met": met.strip("*")})

        def cell(x: tuple[float, float] | None, unit: str = unit) -> str:
            return "–" if x is None else f"{fmt(x[0], unit)} ({fmt(x[1], unit)})"

        lines.append(f"| {label} | {fmt(d[0], unit) if d else '–'} | {cell(i)} | {cell(m)} | "
                     f"{'–' if adv is None else f'{adv:.2f}×'} | {tgt} | {met} |")
    lines += [
        "",
        "Proxy CPU time per operation (µs; per MB for the download), from /proc/PID/stat over each measurement:",
        "",
        "| case | interpose mean (best) | mitmdump mean (best) | interpose advantage |",
        "|---|---:|---:|---:|",
    ]

    def cpu_cell(x: tuple[float, float] | None) -> str:
        return "–" if x is None else f"{fmt(x[0], '')} ({fmt(x[1], '')})"

    for case, key, label, *_ in ROWS:
        if key != "rate" or case not in results or case == "memory":
            continue
        i, m = (agg(results[case][t], "cpu_us_per_op", False) for t in PROXIES)
        adv = f"{m[0] / i[0]:.2f}×" if i and m and i[0] else "–"
        lines.append(f"| {label.split(':')[0]} | {cpu_cell(i)} | {cpu_cell(m)} | {adv} |")
    if EXTRA:
        lines += ["", "Variants of interpose in the same run (rate and CPU per operation; advantage over mitmdump):",
                  "",
                  "| case | variant | rate mean (best) | advantage | CPU µs per op mean (best) | advantage |",
                  "|---|---|---:|---:|---:|---:|"]
        for case, key, label, *_ in ROWS:
            if key != "rate" or case not in results or case == "memory":
                continue
            mitm = results[case]["mitmdump"]
            m, mc = agg(mitm, "rate", True), agg(mitm, "cpu_us_per_op", False)
            for variant in ("interpose", *EXTRA):
                r, c = agg(results[case][variant], "rate", True), agg(results[case][variant], "cpu_us_per_op", False)
                ra = f"{r[0] / m[0]:.2f}×" if r and m and m[0] else "–"
                ca = f"{mc[0] / c[0]:.2f}×" if c and mc and c[0] else "–"
                lines.append(f"| {label.split(':')[0]} | {variant} | {cpu_cell(r)} | {ra} | {cpu_cell(c)} | {ca} |")
    return "\n".join(lines), verdicts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help=f"comma-separated cases from: {', '.join(cases.CASES)}; or tui1m alone "
                                  "(bench/tui_bench.py: the TUI at a million flows)")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (default 4)")
    p.add_argument("--rounds", type=int, default=2, help="measurements per proxy and case (default 2)")
    p.add_argument("--flows", type=int, default=20000, help="requests before the memory reading (default 20000)")
    p.add_argument("--max-wait", type=float, default=240.0,
                   help="seconds in all to wait for other processes to leave the CPUs alone (default 240)")
    p.add_argument("--json", help="write every measurement and the machine description here")
    p.add_argument("--no-pin", action="store_true", help="do not pin the proxy and the load to separate CPUs")
    p.add_argument("--profile", metavar="DIR",
                   help="profile interpose with py-spy on cases 1, 2 and 3 (or those of --only) instead")
    p.add_argument("--extra", help="comma-separated interpose variants to measure too, side by side: "
                                   f"{', '.join(proxies.VARIANTS)}, base+interpose (INTERPOSE_BENCH_BASE=DIR)")
    args = p.parse_args()
    EXTRA[:] = args.extra.split(",") if args.extra else []
    based = "INTERPOSE_BENCH_BASE" in os.environ  # base+interpose: that checkout's package (bench/session_bench.py)
    if any(v not in proxies.VARIANTS and not (based and v == "base+interpose") for v in EXTRA):
        p.error(f"unknown variant in --extra; choose from {list(proxies.VARIANTS)}, or base+interpose with "
                "INTERPOSE_BENCH_BASE=DIR (DIR/pkg/interpose: another revision's core/)")
    if args.only == "tui1m":  # the TUI at a million flows: in-process, needs no proxy, nginx or mitmdump
        import tui_bench
        tui_bench.main([])
        return
    names = args.only.split(",") if args.only else list(cases.CASES)
    unknown = [n for n in names if n not in cases.CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {list(cases.CASES)}")

    WAIT["left"] = args.max_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up nginx and the proxy on the way out
    check_tools()
    mitm = proxies.ensure_mitmdump(log)
    proxies.compile_interpose()
    info = machine() | {"interpose_loop": proxies.interpose_loop(), "mitmdump": mitm}
    proxy_cpus, where = placement(not args.no_pin)
    info["placement"] = where
    tmp = tempfile.mkdtemp(prefix="interpose-bench-")
    origin = start_nginx(tmp)
    b = cases.Bench(origin, tmp, args.duration, args.flows, proxy_cpus, log)
    try:
        for name in (*PROXIES, *EXTRA):  # the first start creates the CA; not part of the startup numbers
            t0 = time.perf_counter()
            b.start(name).stop()
            info[f"{name}_first_start_s"] = f"{time.perf_counter() - t0:.2f}"
        log(f"machine: {info}")
        if args.profile:
            import profile_interpose
            profile_interpose.run(b, args.profile, args.only.split(",") if args.only else None)
            return
        t0 = time.perf_counter()
        results = run_cases(b, names, args.rounds)
        table, verdicts = report(results, args.rounds, args.flows)
        info["wall_s"] = f"{time.perf_counter() - t0:.0f}"
        others = [r["other_cpu"] for res in results.values() for runs in res.values() for r in runs if "other_cpu" in r]
        info["other_cpu"] = f"mean {statistics.mean(others):.2f}, max {max(others):.2f}" if others else "?"
    finally:
        origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmachine: {info['nproc']} × {info['cpu']}, Python {info['python']}, Linux {info['kernel']}")
    print(f"interpose at {info['commit']}")
    print(f"interpose-dump on {info['interpose_loop']}; {info['mitmdump']} (asyncio); {info['placement']}")
    print(f"{args.rounds} measurement(s) per proxy and case, {args.duration:g} s each; run took {info['wall_s']} s")
    print(f"CPUs kept busy by processes outside the benchmark during measurements: {info['other_cpu']}\n")
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "results": results, "targets": verdicts}, f, indent=1)


if __name__ == "__main__":
    main()
