"""The proxies under test: start `interpose-dump` or `mitmdump`, time their startup, read their memory.

mitmproxy is not a dependency of interpose: `ensure_mitmdump()` installs it into the benchmark's own
virtual environment (`bench/.venv-mitm`, gitignored) the first time.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import venv
from dataclasses import dataclass, field

from origin import free_port, wait_port

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
MITM_VENV = os.path.join(BENCH, ".venv-mitm")
MITM_VERSION = "11.0.2"  # the newest mitmproxy that installs on Python 3.11
MITMDUMP = os.path.join(MITM_VENV, "bin", "mitmdump")


def ensure_mitmdump(log: object = print) -> str:
    """Create bench/.venv-mitm with mitmproxy==MITM_VERSION unless it is already there; return its version line."""
    if not os.path.exists(MITMDUMP):
        log(f"creating {os.path.relpath(MITM_VENV)} with mitmproxy=={MITM_VERSION} (first run only)...")  # type: ignore[operator]
        venv.EnvBuilder(with_pip=True, clear=True).create(MITM_VENV)
        pip = os.path.join(MITM_VENV, "bin", "pip")
        subprocess.run([pip, "install", "-q", "--disable-pip-version-check", f"mitmproxy=={MITM_VERSION}"], check=True)
    out = subprocess.run([MITMDUMP, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def compile_interpose() -> None:
    """Write interpose's bytecode caches, as `pip install .` does for both proxies. interpose runs from
    the checkout here, and with PYTHONDONTWRITEBYTECODE set (some sandboxes and containers set it) it
    would otherwise compile every module at every start: about 120 ms of startup on the test machine."""
    import compileall

    for package in ("core", "addons"):
        compileall.compile_dir(os.path.join(REPO, package), quiet=1)


def interpose_loop() -> str:
    """What event loop `interpose-dump` will run on (it picks uvloop itself when it is installed)."""
    try:
        import uvloop
        return f"uvloop {uvloop.__version__}"
    except ImportError:
        return "asyncio (uvloop not installed)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Proxy:
    """One running proxy process."""
    name: str
    port: int
    ca_file: str
    proc: subprocess.Popen[bytes]
    t_exec: float
    startup: float | None = None  # exec -> first accepted TCP connection
    listening_line: float | None = None  # exec -> "proxy listening at" on stderr (interpose only)
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, int]:
        """VmRSS / VmHWM (peak RSS) in bytes, from /proc/PID/status."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


VARIANTS = {"interpose+noreuse": ["--set", "server_reuse=false"]}
"""interpose with other options (bench/run.py --extra): what a feature buys, measured in the same run."""


def command(name: str, port: int, confdir: str, upstream_ca: str) -> tuple[list[str], str]:
    """The command line for `name` and the CA certificate a client must trust."""
    if name.startswith("base+"):  # bench/session_bench.py --base DIR: another revision's interpose
        name = name[len("base+"):]
    if name in VARIANTS:
        cmd, ca = command("interpose", port, confdir, upstream_ca)
        return cmd + VARIANTS[name], ca
    if name in ("interpose", "interpose+session"):
        cmd = [sys.executable, "-m", "interpose.cli.dump", "-q", "--listen-host", "127.0.0.1", "-p", str(port),
               "--confdir", confdir, "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}"]
        if name == "interpose+session":  # bench/session_bench.py: the same, recording every flow into a session
            session = os.path.join(confdir, f"bench-{port}.session")
            cmd += ["--session", session]
        return cmd, os.path.join(confdir, "interpose-ca-cert.pem")
    if name == "mitmdump":
        # stream_large_bodies=4m is interpose's default; mitmdump's default buffers whole bodies.
        cmd = [MITMDUMP, "-q", "--listen-host", "127.0.0.1", "-p", str(port), "--set", f"confdir={confdir}",
               "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}", "--set", "stream_large_bodies=4m"]
        return cmd, os.path.join(confdir, "mitmproxy-ca-cert.pem")
    raise ValueError(name)


def start(name: str, confdir: str, upstream_ca: str, cpus: set[int] | None = None) -> Proxy:
    """Start a proxy on a free port and wait until it accepts connections; fills in the startup times."""
    os.makedirs(confdir, exist_ok=True)
    port = free_port()
    cmd, ca_file = command(name, port, confdir, upstream_ca)
    t_exec = time.perf_counter()
    env = None
    if name.startswith("base+"):  # the package of BASE_DIR (a checkout laid out by bench/session_bench.py)
        env = {**os.environ, "PYTHONPATH": os.path.join(os.environ["INTERPOSE_BENCH_BASE"], "pkg")}
    proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)  # right after fork; not preexec_fn, which is unsafe with threads
    proxy = Proxy(name, port, ca_file, proc, t_exec)

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if proxy.listening_line is None and "listening at" in line:
                proxy.listening_line = time.perf_counter() - t_exec
            proxy.stderr_tail = (proxy.stderr_tail + [line])[-20:]

    threading.Thread(target=read_stderr, daemon=True).start()
    if not wait_port(port, timeout=30, proc=proc):
        proxy.stop()
        raise RuntimeError(f"{name} did not start: " + "\n".join(proxy.stderr_tail))
    proxy.startup = time.perf_counter() - t_exec
    if not os.path.exists(ca_file):
        proxy.stop()
        raise RuntimeError(f"{name} started but wrote no {ca_file}")
    return proxy
