"""The benchmark cases. Each `case_*` measures one target (`interpose`, `mitmdump` or `direct`) once,
on a freshly started proxy, and returns a dict of numbers (see docs/benchmarks.md for what each means).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import proxies
from origin import Origin

BENCH = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(BENCH, "clients.py")

WRK_LUA = """\
-- Send absolute-form requests, as a client of an HTTP proxy does (a server accepts them too).
wrk.path = "http://127.0.0.1:{port}/1k"
wrk.headers["Host"] = "127.0.0.1:{port}"
done = function(summary, latency, requests)
  io.write(string.format(
    "JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"errors\\": %d, \\"status_errors\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


@dataclass
class Bench:
    """What every case needs: the origin, where things live, how long to measure, and CPU placement."""
    origin: Origin
    tmp: str
    duration: float
    flows: int
    proxy_cpus: set[int] | None
    log: Callable[[str], None]

    @property
    def lua(self) -> str:
        path = os.path.join(self.tmp, "proxy.lua")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(WRK_LUA.format(port=self.origin.http_port))
        return path

    def start(self, name: str) -> proxies.Proxy:
        return proxies.start(name, os.path.join(self.tmp, f"conf-{name}"), self.origin.ca_file, self.proxy_cpus)


def machine_busy() -> float:
    """CPU-seconds the whole machine has spent busy (not idle or waiting for IO) since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def own_busy(pids: list[int]) -> float:
    """CPU-seconds used by this script, its reaped children (clients, wrk, curl) and the live `pids`."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    return total + sum(proxies.cpu_seconds(pid) for pid in pids)


def others_busy(b: Bench, window: float = 0.5) -> float:
    """How many CPUs processes outside the benchmark keep busy, over `window` seconds."""
    live = [b.origin.proc.pid] if b.origin.proc else []
    m0, o0 = machine_busy(), own_busy(live)
    time.sleep(window)
    return max(0.0, (machine_busy() - m0) - (own_busy(live) - o0)) / window


def wait_quiet(b: Bench, quiet: float, limit: float) -> tuple[float, float]:
    """Wait (at most `limit` s) until other processes use less than `quiet` CPUs; return (their use, waited s)."""
    t0 = time.perf_counter()
    while True:
        busy = others_busy(b)
        waited = time.perf_counter() - t0
        if busy < quiet or waited >= limit:
            return busy, waited


def run_target(b: Bench, target: str, body: Callable[[proxies.Proxy | None], dict[str, Any]]) -> dict[str, Any]:
    """Start the proxy (unless direct) and run `body`. Adds the proxy's CPU use (in CPUs) and `other_cpu`:
    how many CPUs processes outside the benchmark kept busy meanwhile (they make a measurement noisy)."""
    p = None if target == "direct" else b.start(target)
    try:
        live = [pid for pid in (b.origin.proc.pid if b.origin.proc else None, p and p.pid) if pid]
        t0, m0, o0 = time.perf_counter(), machine_busy(), own_busy(live)
        proxy0 = p.cpu_seconds() if p else 0.0
        out = body(p)
        elapsed = time.perf_counter() - t0
        out["other_cpu"] = max(0.0, (machine_busy() - m0) - (own_busy(live) - o0)) / elapsed
        if p is not None:
            out["proxy_cpu"] = (p.cpu_seconds() - proxy0) / elapsed
            if out.get("rate"):  # CPU per operation hardly depends on what else the machine is doing
                out["cpu_us_per_op"] = out["proxy_cpu"] / out["rate"] * 1e6
            out.update(p.status())
        return out
    finally:
        if p is not None:
            p.stop()


def wrk(b: Bench, port: int, seconds: float) -> dict[str, Any]:
    cmd = ["wrk", "-t2", "-c50", f"-d{max(1, round(seconds))}s", "--latency", "-s", b.lua, f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("JSON "):
            r = json.loads(line[5:])
            r["rate"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")


def client(b: Bench, case: str, p: proxies.Proxy | None, *extra: str, timeout: float = 60, tls: bool = True,
           port: int | None = None) -> dict[str, Any]:
    target = f"127.0.0.1:{port or (b.origin.https_port if tls else b.origin.http_port)}"
    cmd = [sys.executable, CLIENTS, case, "--proxy", f"127.0.0.1:{p.port}" if p else "none", "--target", target,
           "--cafile", p.ca_file if p else b.origin.ca_file, "--duration", f"{b.duration:g}", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=b.duration + timeout, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"{case} client failed: {out.stderr[-2000:]}")
    r = json.loads(out.stdout)
    if r.get("failed") or r["error_count"]:
        b.log(f"    ! {case}: {r['error_count']} errors, e.g. {r['errors'][:2]}")
    return r


def case_http1(b: Bench, target: str) -> dict[str, Any]:
    """1: HTTP/1.1 keep-alive, 1 KiB responses, 50 connections (wrk): req/s, p50/p99 latency."""
    def body(p: proxies.Proxy | None) -> dict[str, Any]:
        port = p.port if p else b.origin.http_port
        wrk(b, port, 1)  # warm-up
        r = wrk(b, port, b.duration)
        if r["errors"] or r["status_errors"]:
            b.log(f"    ! wrk: {r['errors']} socket errors, {r['status_errors']} non-2xx responses")
        return {"rate": r["rate"], "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000}
    return run_target(b, target, body)


def case_download(b: Bench, target: str) -> dict[str, Any]:
    """2: one 100 MiB download with curl: MB/s (10^6 bytes/s) and the proxy's peak RSS (VmHWM)."""
    def body(p: proxies.Proxy | None) -> dict[str, Any]:
        proxy = ["-x", f"http://127.0.0.1:{p.port}"] if p else ["--noproxy", "*"]
        url = f"http://127.0.0.1:{b.origin.http_port}"
        subprocess.run(["curl", "-sf", *proxy, "-o", "/dev/null", f"{url}/1k"], check=True)
        out = subprocess.run(["curl", "-sf", *proxy, "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
                              f"{url}/100m"], capture_output=True, text=True, check=True, timeout=120)
        speed, size = out.stdout.split()
        if int(size) != 100 << 20:
            raise RuntimeError(f"downloaded {size} bytes, not 100 MiB")
        return {"rate": float(speed) / 1e6}
    return run_target(b, target, body)


def case_tls_handshake(b: Bench, target: str) -> dict[str, Any]:
    """3: HTTPS interception, a new connection (CONNECT + TLS) per request: handshakes/s."""
    return run_target(b, target, lambda p: client(b, "tls-handshake", p, "--workers", "32"))


def case_tls_resume(b: Bench, target: str) -> dict[str, Any]:
    """3c: as 3, but as browsers and servers do it: the client resumes its TLS session with the proxy (or the
    origin, direct) and the origin (nginx) allows resumption too: handshakes/s."""
    return run_target(b, target, lambda p: client(b, "tls-resume", p, "--workers", "32",
                                                  port=b.origin.https_resume_port))


def case_tls_keepalive(b: Bench, target: str) -> dict[str, Any]:
    """3b: HTTPS interception over 50 persistent TLS connections: req/s."""
    return run_target(b, target, lambda p: client(b, "tls-keepalive", p, "--workers", "50"))


def case_h2(b: Bench, target: str) -> dict[str, Any]:
    """4: HTTP/2, 100 concurrent streams on one connection (CONNECT + TLS, ALPN h2): req/s."""
    return run_target(b, target, lambda p: client(b, "h2", p, "--streams", "100"))


def case_websocket(b: Bench, target: str) -> dict[str, Any]:
    """5: WebSocket echo, 128-byte messages, 64 in flight on one connection: messages/s."""
    return run_target(b, target, lambda p: client(b, "ws", p, "--window", "64", "--size", "128"))


def case_memory(b: Bench, target: str) -> dict[str, Any]:
    """6: RSS after `flows` plain-HTTP keep-alive requests (50 connections), once they are done."""
    def body(p: proxies.Proxy | None) -> dict[str, Any]:
        assert p is not None
        idle = p.status()["VmRSS"]
        r = client(b, "http-requests", p, "--workers", "50", "--total", str(b.flows), timeout=600, tls=False)
        time.sleep(1.0)
        return {"flows": r["count"], "rate": r["rate"], "idle_rss": idle, "rss_after": p.status()["VmRSS"]}
    return run_target(b, target, body)


def case_startup(b: Bench, target: str) -> dict[str, Any]:
    """7: exec -> first accepted connection (confdir and CA already exist), and RSS 1 s later."""
    p = b.start(target)
    try:
        time.sleep(1.0)
        return {"startup": p.startup, "listening_line": p.listening_line, "idle_rss": p.status()["VmRSS"]}
    finally:
        p.stop()


CASES: dict[str, tuple[Callable[[Bench, str], dict[str, Any]], bool]] = {
    # name: (function, also measured direct)
    "startup": (case_startup, False),
    "http1": (case_http1, True),
    "download": (case_download, True),
    "tls-handshake": (case_tls_handshake, True),
    "tls-resume": (case_tls_resume, True),
    "tls-keepalive": (case_tls_keepalive, True),
    "h2": (case_h2, True),
    "websocket": (case_websocket, True),
    "memory": (case_memory, False),
}
