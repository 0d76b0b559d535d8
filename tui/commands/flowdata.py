"""More of mitmproxy's flow commands: `cut` and `export` (they return the values, for `:` and for addons
through `ctx.master.commands`), `flow.set` (a flow's method, URL, host, path, status code or reason),
`flow.encode.toggle` and `flow.encode.options`, `view.flows.create` (a new request in the list) and
`replay.client.file`."""
from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Annotated, Any

from interpose import command as api
from interpose.errors import InterposeError
from interpose.http import HTTPFlow, Request
from interpose.model.connection import Client, Server
from interpose.model.encoding import BodyTooLarge
from interpose.model.flow import Flow
from interpose.proxy.layers import h1wire
from interpose.runtime.builtins import readfile
from interpose.runtime.commands import CommandError
from interpose.runtime.commands.types import CutSpecsT
from interpose.store import cut as cutlib
from interpose.tui.commands.base import tui_command
from interpose.tui.commands.bodies import ENCODINGS, PART, _messages, _refresh
from interpose.tui.commands.flows import EXPORT_FORMATS, _changed, _export

SET_ATTRS = ("host", "status_code", "method", "path", "url", "reason")


@tui_command("cut")
def cut(app: Any, flows: Sequence[Flow], cuts: CutSpecsT) -> list[list[str | bytes]]:
    """Cut fields out of the flows: one row per flow, one value per cut spec (bytes stay bytes; a part
    a flow lacks, such as a TCP flow's request, is empty). cut.clip and cut.save copy or write them."""
    try:
        return cutlib.cut(flows, list(cuts))
    except BodyTooLarge as e:
        raise CommandError(f"cut: {e}") from None


@tui_command("export")
def export_text(app: Any, format: Annotated[str, EXPORT_FORMATS], flow: Flow) -> str:
    """A flow as curl, httpie or raw HTTP: the text export.clip copies and export.file writes."""
    data = _export(format, flow)
    return data if isinstance(data, str) else data.decode("utf-8", "backslashreplace")


@tui_command("flow.set.options")
def flow_set_options(app: Any) -> list[str]:
    """What flow.set can change."""
    return list(SET_ATTRS)


def _check_value(attr: str, value: str) -> int | None:
    """The status code as a number; a one-line error for a value that cannot go on the wire."""
    if attr == "status_code":
        if not value.isdigit() or not 100 <= int(value) <= 999:
            raise CommandError(f"flow.set: a status code is a number from 100 to 999, not {value!r}")
        return int(value)
    if h1wire.BAD_VALUE.search(value.encode("utf-8", "surrogateescape")):
        raise CommandError(f"flow.set: {attr} may not contain CR, LF or NUL")
    if attr == "method" and not h1wire.TOKEN.fullmatch(value.encode("utf-8", "surrogateescape")):
        raise CommandError(f"flow.set: not a method: {value!r}")
    if attr in ("host", "path") and (not value or any(c.isspace() for c in value)):
        raise CommandError(f"flow.set: a {attr} is not empty and has no spaces: {value!r}")
    return None


@tui_command("flow.set")
def flow_set(app: Any, flows: Sequence[Flow], attr: Annotated[str, api.Choice(*SET_ATTRS)], value: str) -> None:
    """Set the method, URL, host, path, status code or reason of the flows (held or finished ones; a
    flow still on its way is left alone). `flow.revert` undoes it."""
    code = _check_value(attr, value)
    changed, busy = [], 0
    for f in flows:
        req: Any = getattr(f, "request", None)
        resp: Any = getattr(f, "response", None)
        target = resp if attr in ("status_code", "reason") else req
        if target is None:
            continue
        if f.live and not f.intercepted:
            busy += 1
            continue
        f.backup()
        if attr == "url":
            try:
                req.url = value
            except ValueError as e:
                f.revert()
                raise CommandError(f"flow.set: {e}") from None
        elif attr == "status_code" and code is not None:
            resp.status_code = code
            resp.reason = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else ""
        elif attr == "host":
            req.host = value
            if "host" in req.headers:
                req.headers["host"] = req.host_header_value
        else:
            setattr(target, attr, value)
        changed.append(f)
    _changed(app, changed)
    app.notify(f"set {attr} on {len(changed)} flow{'s' if len(changed) != 1 else ''}"
               + (f" ({busy} still on their way left alone)" if busy else ""))


@tui_command("flow.encode.options")
def encode_options(app: Any) -> list[str]:
    """The encodings flow.encode takes."""
    return ENCODINGS.options()


@tui_command("flow.encode.toggle")
def encode_toggle(app: Any, flows: Sequence[Flow], part: Annotated[str, PART]) -> None:
    """Decode the request or response body if it is encoded, else encode it with deflate."""
    done = _messages(flows, part)
    for f, msg in done:
        f.backup()
        if msg.headers.get("content-encoding", "identity").strip().lower() in ("", "identity"):
            msg.encode("deflate")
        else:
            msg.decode()
    _refresh(app, done, f"toggled the encoding of {len(done)} {part} bodies")


@tui_command("view.flows.create")
def flows_create(app: Any, method: str, url: str) -> None:
    """Add a new flow to the list with this request, not sent: `replay.client @focus` sends it, `e` edits it."""
    if not h1wire.TOKEN.fullmatch(method.encode("utf-8", "surrogateescape")):
        raise CommandError(f"view.flows.create: not a method: {method!r}")
    try:
        req = Request.make(method.upper(), url if "://" in url else "http://" + url)
    except ValueError as e:
        raise CommandError(f"view.flows.create: {e}") from None
    flow = HTTPFlow(Client(address=None), Server(address=(req.host, req.port)), live=False)
    flow.request = req
    flow.timestamp_created = req.timestamp_start
    app.store.add(flow)
    where = app.store.index(flow)
    if where is not None:
        app.flowlist.focus_index(where)
        app.follow = False
    _changed(app, [])
    app.notify(f"created {req.method} {req.url}")


@tui_command("replay.client.file")
def replay_file(app: Any, path: api.Path) -> None:
    """Send the requests of a flow file (or HAR) again, each as a new flow in the list."""
    try:
        flows, warning = readfile.load(path)
    except InterposeError as e:
        raise CommandError(f"replay.client.file: {e}") from None
    http = [f for f in flows if f.type == "http"]
    for f in http:
        app.spawn(app.core.replay(f))
    app.notify(f"replaying {len(http)} request{'s' if len(http) != 1 else ''} from {path}"
               + (f"; {warning}" if warning else ""))
