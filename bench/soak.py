"""Soak test: run `interpose-dump` under steady mixed load and check that its resources stay flat.

    python bench/soak.py                          # 600 s of load (30 s of it warm-up), then the verdict
    python bench/soak.py --duration 60 --warmup 10 --json soak.json
    python bench/soak.py --tracemalloc            # the stats addon also reports the lines that grow

Everything runs on loopback. The proxy is `python -m interpose.cli.dump -q` in a subprocess with the stats
addon `bench/soak_stats.py`, which writes its RSS, open fds, asyncio task count, open client
connections and gc object count to a JSON file every second. This process runs the origins and the
clients:

- plain HTTP/1.1: nginx when it is installed (a tiny config of `return` directives), else the tests'
  h11 origin (`tests.servers.Origin`);
- TLS with ALPN h2 and http/1.1: hypercorn (`tests.tls_servers.H2Origin`, certificate from a test CA
  made with `interpose.proxy.tls.certs.CertStore`; the proxy is told to trust that CA);
- WebSocket: a `websockets` echo server (`tests.ws_servers.WsServer`).

Load, `--concurrency` workers of each kind (default 2), each in a loop until the time is up:
`http1` (httpx, absolute-form GETs and 8 KiB POSTs, a new connection every 50 requests), `https`
(httpx over CONNECT + intercepted TLS, HTTP/1.1), `h2` (httpx HTTP/2, 8 concurrent streams per
round, a new connection every 20 rounds), `ws` (websockets through CONNECT: 20 echoed messages per
connection) and one `faults` worker (a 502 from a refused port, a client that leaves mid-head, a
client that leaves while waiting for a slow response), about once a second.

The verdict compares samples: `idle` (before any load), `warm` (at the end of the warm-up), `mid`
(half-way through the rest, shown only), `end` (the last sample under load) and `after` (once the load
stopped and the clients left). RSS is flat
when `end` is within 10% of `warm`; fds and tasks must come back to `idle` (a small slack) once the
load stops. Exit status 0 when flat, 1 when not, 2 when the run itself failed.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import httpx
from websockets.asyncio.client import connect as ws_connect

from tests.servers import Origin
from tests.tls_servers import H2Origin, TestCA
from tests.ws_servers import WsServer

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

RSS_TOLERANCE = 0.10
FD_SLACK = 2
STEP_TIMEOUT_S = 60
"""A worker's round (one client connection's worth of requests) failing to finish in this long is an error."""
TASK_SLACK = 2
NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""


# -- origins --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            w.close()
            return


class PlainOrigin:
    """nginx if installed, else the tests' h11 origin. `url` is its base URL."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.h11: Origin | None = None
        self.url = ""
        self.kind = ""

    async def start(self) -> PlainOrigin:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if nginx:
            port = free_port()
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(tmp=self.tmp, port=port, body="x" * 2047 + "\\n"))
            self.proc = subprocess.Popen(
                [nginx, "-c", conf, "-p", self.tmp, "-e", os.path.join(self.tmp, "nginx-error.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                await wait_port(port)
            except TimeoutError:
                self.stop()
            else:
                self.url, self.kind = f"http://127.0.0.1:{port}", "nginx"
                return self
        self.h11 = await Origin().start()
        self.url, self.kind = self.h11.url, "h11 (tests.servers.Origin)"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.h11 is not None and self.h11.server is not None:
            self.h11.server.close()


# -- the proxy ------------------------------------------------------------------------------------
class Proxy:
    def __init__(self, tmp: str, trusted_ca: str, tracemalloc: bool) -> None:
        self.confdir = os.path.join(tmp, "confdir")
        self.stats_path = os.path.join(tmp, "stats.json")
        self.args = [sys.executable, "-m", "interpose.cli.dump", "-q", "-p", "0", "--confdir", self.confdir,
                     "-s", os.path.join(BENCH, "soak_stats.py"), "--set", f"soak_stats_file={self.stats_path}",
                     "--set", f"ssl_verify_upstream_trusted_ca={trusted_ca}"]
        if tracemalloc:
            self.args += ["--set", "soak_tracemalloc=true"]
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.stderr: list[str] = []
        self.errors: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return os.path.join(self.confdir, "interpose-ca-cert.pem")

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        assert self.proc.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("the proxy exited before listening: " + "".join(self.stderr[-20:]))
                self.stderr.append(line)
                if line.startswith("proxy listening at "):
                    self.port = int(line.rsplit(":", 1)[1])
                    break
        self._reader = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := (await self.proc.stderr.readline()).decode(errors="replace"):
            self.stderr.append(line)
            del self.stderr[:-2000]
            if "[error]" in line or "Traceback" in line:
                self.errors.append(line.rstrip())

    def read_stats(self) -> dict[str, Any] | None:
        try:
            with open(self.stats_path) as f:
                return json.load(f)  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                code = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(5):
                    await self._reader
        return code


# -- load -----------------------------------------------------------------------------------------
@dataclass
class Counter:
    ops: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def fail(self, e: BaseException, at: float) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"at {at:.0f} s: {type(e).__name__}: {e}"[:200])


class Load:
    def __init__(self, proxy: Proxy, plain: str, tls_port: int, ws_url: str, concurrency: int) -> None:
        self.proxy = proxy
        self.plain = plain
        self.tls_base = f"https://127.0.0.1:{tls_port}"
        self.ws_url = ws_url
        self.concurrency = concurrency
        self.stop = asyncio.Event()
        self.counters: dict[str, Counter] = {k: Counter() for k in ("http1", "https", "h2", "ws", "faults")}
        self.client_tls = ssl.create_default_context(cafile=proxy.ca_file)
        self.t0 = time.monotonic()

    async def _loop(self, kind: str, step: Callable[[], Awaitable[None]]) -> None:
        c = self.counters[kind]
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    await step()
            except Exception as e:
                c.fail(e, time.monotonic() - self.t0)
                await asyncio.sleep(0.2)

    async def http1(self) -> None:
        async with httpx.AsyncClient(proxy=self.proxy.url, timeout=20) as client:
            for i in range(50):
                if self.stop.is_set():
                    return
                if i % 5 == 4:
                    r = await client.post(f"{self.plain}/post", content=b"p" * 8192)
                else:
                    r = await client.get(f"{self.plain}/get?i={i}")
                r.raise_for_status()
                self.counters["http1"].ops += 1

    async def https(self) -> None:
        async with httpx.AsyncClient(proxy=self.proxy.url, verify=self.client_tls, timeout=20) as client:
            for i in range(30):
                if self.stop.is_set():
                    return
                path = "/bytes/16384" if i % 3 else "/echo"
                r = await client.get(f"{self.tls_base}{path}")
                r.raise_for_status()
                self.counters["https"].ops += 1

    async def h2(self) -> None:
        async with httpx.AsyncClient(proxy=self.proxy.url, verify=self.client_tls, http2=True, timeout=20) as client:
            for _ in range(20):
                if self.stop.is_set():
                    return
                rs = await asyncio.gather(*(client.get(f"{self.tls_base}/bytes/4096") for _ in range(8)))
                for r in rs:
                    r.raise_for_status()
                    if r.http_version != "HTTP/2":
                        raise RuntimeError(f"expected HTTP/2, got {r.http_version}")
                self.counters["h2"].ops += len(rs)

    async def ws(self) -> None:
        async with ws_connect(self.ws_url, proxy=self.proxy.url, ping_interval=None, open_timeout=20,
                              close_timeout=5) as ws:
            for i in range(20):
                msg = f"soak {i}" if i % 2 else os.urandom(1024)
                await ws.send(msg)
                if await ws.recv() != msg:
                    raise RuntimeError("echo mismatch")
                self.counters["ws"].ops += 1

    async def faults(self) -> None:
        c = self.counters["faults"]
        dead = free_port()
        async with httpx.AsyncClient(proxy=self.proxy.url, timeout=20) as client:
            r = await client.get(f"http://127.0.0.1:{dead}/refused")
            if r.status_code != 502:
                raise RuntimeError(f"refused port answered {r.status_code}")
        c.ops += 1
        # A client that sends half a request head and leaves.
        _, w = await asyncio.open_connection("127.0.0.1", self.proxy.port)
        w.write(f"GET {self.plain}/half HTTP/1.1\r\nHost: x\r\n".encode())
        await w.drain()
        w.close()
        c.ops += 1
        # A client that leaves while its (slow) response is on its way.
        with contextlib.suppress(TimeoutError, httpx.HTTPError):
            async with httpx.AsyncClient(proxy=self.proxy.url, verify=self.client_tls, timeout=0.2) as client:
                await client.get(f"{self.tls_base}/slow")
        c.ops += 1
        await asyncio.sleep(1)

    def workers(self) -> list[asyncio.Task[None]]:
        tasks = []
        for kind, step in (("http1", self.http1), ("https", self.https), ("h2", self.h2), ("ws", self.ws)):
            for _ in range(self.concurrency):
                tasks.append(asyncio.create_task(self._loop(kind, step)))
        tasks.append(asyncio.create_task(self._loop("faults", self.faults)))
        return tasks


# -- the run --------------------------------------------------------------------------------------
class Samples:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.all: list[dict[str, Any]] = []
        self.phase = "idle"

    async def collect(self) -> None:
        last = -1
        while True:
            s = self.proxy.read_stats()
            if s is not None and s["seq"] != last:
                last = s["seq"]
                s["phase"] = self.phase
                self.all.append(s)
            await asyncio.sleep(0.5)

    def latest(self) -> dict[str, Any]:
        return dict(self.all[-1])

    async def fresh(self, timeout: float = 10) -> dict[str, Any]:
        """The next sample taken from now on."""
        n = len(self.all)
        async with asyncio.timeout(timeout):
            while len(self.all) <= n:
                await asyncio.sleep(0.1)
        return self.latest()


def slope_kb_per_min(samples: list[dict[str, Any]]) -> float:
    """Least-squares slope of RSS over time (KiB per minute)."""
    if len(samples) < 2:
        return 0.0
    ts = [s["t"] for s in samples]
    ys = [s["rss_kb"] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / den if den else 0.0


def verdict(idle: dict[str, Any], warm: dict[str, Any], end: dict[str, Any], after: dict[str, Any]) -> dict[str, bool]:
    return {
        "rss": end["rss_kb"] <= warm["rss_kb"] * (1 + RSS_TOLERANCE),
        "fds": after["fds"] <= idle["fds"] + FD_SLACK,
        "tasks": after["tasks"] <= idle["tasks"] + TASK_SLACK,
        "connections": after["connections"] == 0,
    }


def report(result: dict[str, Any]) -> str:
    phases = ("idle", "warm", "mid", "end", "after")
    rows = [("", *phases)]
    for key, label in (("rss_kb", "RSS (KiB)"), ("fds", "open fds"), ("tasks", "asyncio tasks"),
                       ("connections", "client connections"), ("gc_objects", "gc objects")):
        rows.append((label, *(str(result["samples"][p].get(key)) for p in phases)))
    width = [max(len(r[i]) for r in rows) for i in range(len(phases) + 1)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, width, strict=True)))
             for r in rows]
    ops = ", ".join(f"{k} {c['ops']} ({c['errors']} errors)" for k, c in result["load"].items())
    v = result["verdict"]
    lines += [
        f"load: {ops}",
        f"RSS slope after warm-up: {result['rss_slope_kb_per_min']:+.1f} KiB/min",
        f"proxy exit status {result['exit_status']}, error lines in its log: {len(result['proxy_errors'])}",
        "flat: " + ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in v.items()),
    ]
    for kind, c in result["load"].items():
        for e in c["first_errors"]:
            lines.append(f"  {kind} error: {e}")
    for e in result["proxy_errors"][:10]:
        lines.append(f"  proxy: {e}")
    for e, n in result["origin_side_exceptions"].items():
        lines.append(f"  exceptions in the origins/clients (this process, not the proxy): {n} x {e}")
    return "\n".join(lines)


def quiet_origin_errors(counts: dict[str, int]) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """This process's loop runs the origins: count what they log (hypercorn's TLS shutdown noise) instead of
    printing each one; the first of each kind is still shown."""
    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        key = f"{type(exc).__name__}: {exc}" if exc else str(context.get("message"))
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            loop.default_exception_handler(context)
    return handler


async def soak(args: argparse.Namespace) -> int:
    origin_errors: dict[str, int] = {}
    asyncio.get_running_loop().set_exception_handler(quiet_origin_errors(origin_errors))
    tmp = tempfile.mkdtemp(prefix="interpose-soak-")
    ca = TestCA(Path(tmp) / "origin-ca")
    plain = await PlainOrigin(tmp).start()
    h2 = await H2Origin(ca).start()
    ws = await WsServer().start()
    proxy = Proxy(tmp, ca.path, args.tracemalloc)
    samples = Samples(proxy)
    collector: asyncio.Task[None] | None = None
    tasks: list[asyncio.Task[None]] = []
    load: Load | None = None
    try:
        await proxy.start()
        collector = asyncio.create_task(samples.collect())
        await samples.fresh(15)
        idle = await samples.fresh()
        print(f"proxy on port {proxy.port}; origins: {plain.kind} {plain.url}, "
              f"hypercorn https://127.0.0.1:{h2.port}, websockets {ws.url}", flush=True)
        load = Load(proxy, plain.url, h2.port, ws.url, args.concurrency)
        started = time.monotonic()
        samples.phase = "warmup"
        tasks = load.workers()
        await asyncio.sleep(min(args.warmup, args.duration))
        warm = await samples.fresh()
        samples.phase = "load"
        print(f"warm-up done: RSS {warm['rss_kb']} KiB, fds {warm['fds']}, tasks {warm['tasks']}", flush=True)
        next_note = time.monotonic() + 60
        while (left := args.duration - (time.monotonic() - started)) > 0:
            await asyncio.sleep(min(left, 5))
            if time.monotonic() >= next_note:
                s = samples.latest()
                print(f"{time.monotonic() - started:5.0f} s: RSS {s['rss_kb']} KiB, fds {s['fds']}, "
                      f"tasks {s['tasks']}, "
                      f"connections {s['connections']}", flush=True)
                next_note += 60
        end = await samples.fresh()
        samples.phase = "after"
        load.stop.set()
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks, return_exceptions=True)
        # The clients are gone: wait for the proxy to notice and let go of everything.
        after = await samples.fresh()
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline and not all(verdict(idle, warm, end, after)[k]
                                                      for k in ("fds", "tasks", "connections")):
            after = await samples.fresh()
    except Exception as e:
        print(f"soak: the run failed: {type(e).__name__}: {e}", file=sys.stderr)
        for line in proxy.stderr[-20:]:
            print("  proxy: " + line.rstrip(), file=sys.stderr)
        return 2
    finally:
        for t in tasks:
            t.cancel()
        if collector is not None:
            collector.cancel()
        code = await proxy.stop()
        await ws.stop()
        await h2.stop()
        plain.stop()
    under_load = [s for s in samples.all if s["phase"] == "load"]
    mid = under_load[len(under_load) // 2] if under_load else end
    result = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "origins": {"plain": plain.kind, "tls": "hypercorn", "ws": "websockets"},
        "samples": {"idle": idle, "warm": warm, "mid": mid, "end": end, "after": after},
        "rss_slope_kb_per_min": slope_kb_per_min(under_load),
        "rss_max_kb": max(s["rss_kb"] for s in samples.all),
        "load": {k: vars(c) for k, c in load.counters.items()} if load else {},
        "verdict": verdict(idle, warm, end, after),
        "exit_status": code,
        "proxy_errors": proxy.errors,
        "origin_side_exceptions": origin_errors,
        "series": [{k: s.get(k) for k in ("t", "phase", "rss_kb", "fds", "tasks", "connections", "gc_objects")}
                   for s in samples.all],
    }
    if args.tracemalloc:
        result["top_growth"] = samples.all[-1].get("top_growth")
    print(report(result), flush=True)
    if result.get("top_growth"):
        print("allocation growth since the first snapshot:\n  " + "\n  ".join(result["top_growth"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    ok = all(result["verdict"].values()) and code == 0 and not proxy.errors
    return 0 if ok else 1


def main() -> None:
    p = argparse.ArgumentParser(description="Soak interpose-dump under mixed load; check its resources stay flat.")
    p.add_argument("--duration", type=float, default=600, help="seconds of load, warm-up included (default 600)")
    p.add_argument("--warmup", type=float, default=30, help="seconds of load before the baseline sample (default 30)")
    p.add_argument("--concurrency", type=int, default=2, help="workers of each kind (default 2)")
    p.add_argument("--settle", type=float, default=30, help="seconds allowed for fds/tasks to come back after the load")
    p.add_argument("--tracemalloc", action="store_true", help="have the stats addon report allocation growth")
    p.add_argument("--json", metavar="FILE", help="also write the figures (and the whole series) to FILE")
    args = p.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
