"""`interpose-dump`: the proxy without a screen. One line per finished flow on stdout, logs on stderr.

It keeps no finished flow in memory. Everything it prints passes through `interpose.model.printable`:
control characters a peer sent (ESC, CR/LF, C1, ...) are shown escaped (`^[`, `^J`), never sent to the
terminal, and cannot split one line into two. A body that would decode past `decode_limit` is shown
as a line saying so, not decoded.
"""
from __future__ import annotations

import asyncio
import sys
from http import HTTPStatus
from typing import Any, TextIO

from interpose.cli import args as cli
from interpose.model.encoding import BodyTooLarge
from interpose.model.printable import sanitize, sanitize_segment
from interpose.model.units import human_size
from interpose.runtime.master import Master
from interpose.runtime.options import Options

LEVEL_ORDER = {"debug": 0, "info": 1, "warn": 2, "error": 3}


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.2f}s"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def flow_line(flow: Any, showhost: bool = False) -> str:
    """`127.0.0.1:51234 GET http://example.com/ → 200 OK text/html 1.2k 14ms`. The URL names the address
    the request went to; with `showhost` (mitmproxy's option) the Host header's host instead."""
    req = flow.request
    host, port = flow.client_conn.address or ("?", 0)
    head = f"{host}:{port} {req.method} {req.pretty_url if showhost else req.url}"
    resp = flow.response
    end = None
    if flow.error is not None and (resp is None or flow.killed):
        tail = f"✗ {flow.error.msg}"
        end = flow.error.timestamp
    elif resp is not None:
        if resp.raw_content is not None:
            size: int | None = len(resp.raw_content)
        else:
            cl = resp.headers.get("content-length")
            size = int(cl) if cl and cl.isdigit() else None
        ctype = resp.content_type or "-"
        shown = human_size(size) if size is not None else "?"
        tail = f"{resp.status_code} {resp.reason or _phrase(resp.status_code)} {ctype} {shown}".replace("  ", " ")
        end = resp.timestamp_end
    else:
        tail = "(no response)"
    duration = human_duration(end - req.timestamp_start) if end else ""
    return sanitize_segment(f"{head} → {tail} {duration}".rstrip())


class Dumper:
    """Prints finished flows and log entries."""

    name = "dumper"

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.detail = 1
        self.log_level = 1
        self.showhost = False

    def configure(self, options: Any, updated: set[str]) -> None:
        if "flow_detail" in updated or "quiet" in updated:
            self.detail = 0 if options.quiet else options.flow_detail
        if "showhost" in updated:
            self.showhost = options.showhost
        if "termlog_verbosity" in updated:
            self.log_level = LEVEL_ORDER.get(options.termlog_verbosity, 1)

    def _echo(self, flow: Any) -> None:
        if self.detail <= 0:
            return
        lines = [flow_line(flow, self.showhost)]
        if self.detail >= 2:
            for part in (flow.request, flow.response):
                if part is None:
                    continue
                lines.extend(f"    {sanitize_segment(k)}: {sanitize_segment(v)}"
                             for k, v in part.headers.items(multi=True))
                if self.detail >= 3 and part.raw_content:
                    try:
                        text = part.text or ""
                    except BodyTooLarge as e:
                        lines.append(f"    ({e})")
                    else:
                        lines.append("    " + sanitize(text[:4096].replace("\r\n", "\n")).replace("\n", "\n    "))
                lines.append("")
        print("\n".join(lines), file=self.out, flush=True)

    def response(self, flow: Any) -> None:
        if flow.error is None:
            self._echo(flow)

    def error(self, flow: Any) -> None:
        self._echo(flow)

    def log(self, entry: Any) -> None:
        if LEVEL_ORDER.get(entry.level, 1) >= self.log_level:
            # Escaped, and a message's further lines indented: a peer's CR/LF cannot forge a log line.
            msg = sanitize(str(entry.msg)).replace("\n", "\n    ")
            print(f"[{entry.level}] {msg}" if entry.level in ("warn", "error") else msg,
                  file=self.err, flush=True)


async def run_proxy(opts: Options, *extra_addons: Any) -> int:
    master = Master(opts)
    for addon in extra_addons:
        master.add_addon(addon)
    # -r without --keepserving serves nothing: it binds no port (so it runs beside a proxy on 8080).
    serve = not (opts.rfile and not opts.keepserving)
    host, port = await master.start(listen=serve)
    cli.on_signals(master.shutdown_soon)  # before the line that tells scripts we are up
    if serve:
        print(f"proxy listening at {host}:{port}", file=sys.stderr, flush=True)
    reading = None
    if opts.rfile and not opts.keepserving:
        # -r: exit once every loaded flow went through the addons (--keepserving: keep serving).
        reading = asyncio.ensure_future(master.readfile.finished.wait())
        reading.add_done_callback(lambda _: master.shutdown_soon())
    await master.should_exit.wait()
    if reading is not None:
        reading.cancel()
    await master.shutdown()
    if master.readfile.failed:
        print(f"interpose-dump: error: {master.readfile.failed}", file=sys.stderr, flush=True)
        return 2
    return 0


async def _dump(opts: Options) -> int:
    return await run_proxy(opts, Dumper())


def main(argv: list[str] | None = None) -> None:
    sys.exit(cli.run("interpose-dump", "interpose-dump: the headless intercepting proxy.", _dump, argv))


if __name__ == "__main__":
    main()
