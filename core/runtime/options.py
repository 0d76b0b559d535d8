"""Typed options with defaults, help, validation and change notification.

Core options are declared in `core_options()`; addons declare theirs with `loader.add_option`.
Every option is reachable from `--set NAME=VALUE`. Assigning `options.NAME = value` validates it and
tells subscribers (the addon manager, which calls `configure(options, {"NAME"})`).
"""
from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from interpose import flowfilter
from interpose.errors import OptionsError
from interpose.model import encoding
from interpose.proxy.modes import Mode

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: str | int | None) -> int | None:
    """`"64k"` → 65536. None stays None (no limit)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    return _parse_size(value)


@functools.lru_cache(maxsize=64)
def _parse_size(value: str) -> int:
    """Cached: the layers read size options for every connection and request."""
    m = _SIZE.match(value)
    if not m:
        raise OptionsError(f"invalid size {value!r}: use a number with an optional k, m or g suffix")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _host_name(value: str) -> None:
    """A DNS name (letters, digits, dots, dashes): the onboarding page's host."""
    if not _HOST.match(value):
        raise OptionsError(f"invalid host name {value!r}")


_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


@dataclass
class Option:
    name: str
    typespec: Any
    default: Any
    help: str
    choices: Sequence[str] | None = None
    validate: Callable[[Any], object] | None = None
    """Extra check of a non-None value (e.g. `parse_size`); raises OptionsError."""
    value: Any = None

    def __post_init__(self) -> None:
        self.value = self.default

    @property
    def is_list(self) -> bool:
        return get_origin(self.typespec) in (list, Sequence, tuple) or self.typespec in (list, Sequence)

    @property
    def optional(self) -> bool:
        return get_origin(self.typespec) in (Union, types.UnionType) and type(None) in get_args(self.typespec)

    @property
    def base_type(self) -> Any:
        if self.optional:
            return next(a for a in get_args(self.typespec) if a is not type(None))
        return self.typespec

    def check(self, value: Any) -> Any:
        """Validate a typed value (as an addon or the TUI would assign it)."""
        if value is None and self.optional:
            return None
        if self.is_list:
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise OptionsError(f"option {self.name} expects a list of strings, not {value!r}")
            value = list(value)
            if not all(isinstance(v, str) for v in value):
                raise OptionsError(f"option {self.name} expects a list of strings")
            if self.validate is not None:
                for item in value:
                    try:
                        self.validate(item)
                    except OptionsError as e:
                        raise OptionsError(f"option {self.name}: {e}") from None
            return value
        t = self.base_type
        if t is bool:
            if not isinstance(value, bool):
                raise OptionsError(f"option {self.name} expects true or false, not {value!r}")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionsError(f"option {self.name} expects a whole number, not {value!r}")
        elif t is float:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise OptionsError(f"option {self.name} expects a number, not {value!r}")
            value = float(value)
        elif t is str and not isinstance(value, str):
            raise OptionsError(f"option {self.name} expects text, not {value!r}")
        if self.choices and value not in self.choices:
            raise OptionsError(f"option {self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        if self.validate is not None and value is not None:
            try:
                self.validate(value)
            except OptionsError as e:
                raise OptionsError(f"option {self.name}: {e}") from None
        return value

    def parse(self, text: str, current: Any) -> Any:
        """Turn command-line text into a typed value. A list option appends each `--set`."""
        if self.is_list:
            return [*(current or []), text] if text != "" else []
        if self.optional and text.lower() in ("", "none", "null"):
            return None
        t = self.base_type
        if t is bool:
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise OptionsError(f"option {self.name} expects true or false, not {text!r}")
        if t is int:
            try:
                return int(text)
            except ValueError:
                raise OptionsError(f"option {self.name} expects a whole number, not {text!r}") from None
        if t is float:
            try:
                return float(text)
            except ValueError:
                raise OptionsError(f"option {self.name} expects a number, not {text!r}") from None
        return text


class Options:
    """The live configuration. Attribute access reads and writes option values."""

    def __init__(self) -> None:
        object.__setattr__(self, "_options", {})
        object.__setattr__(self, "_deferred", {})
        object.__setattr__(self, "_subscribers", [])
        object.__setattr__(self, "_soft", {})

    def add_option(
        self, name: str, typespec: Any, default: Any, help: str, choices: Sequence[str] | None = None,
        validate: Callable[[Any], object] | None = None,
    ) -> None:
        existing = self._options.get(name)
        if existing is not None:
            if existing.typespec != typespec:
                raise OptionsError(f"option {name} is already declared with another type")
            return
        opt = Option(name, typespec, default, help, choices, validate)
        opt.check(default) if default is not None or not opt.optional else None
        self._options[name] = opt
        if name in self._deferred:
            texts = self._deferred.pop(name)
            for text in texts:
                opt.value = opt.check(opt.parse(text, opt.value))
            self._notify({name})

    def remove_option(self, name: str) -> None:
        self._options.pop(name, None)

    def subscribe(self, fn: Callable[[set[str]], None]) -> None:
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[set[str]], None]) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    def _notify(self, updated: set[str]) -> None:
        for fn in list(self._subscribers):
            fn(updated)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._options[name].value
        except KeyError:
            raise AttributeError(f"no option named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update(**{name: value})

    def __contains__(self, name: str) -> bool:
        return name in self._options

    def __iter__(self):
        return iter(sorted(self._options))

    def items(self) -> list[tuple[str, Option]]:
        return sorted(self._options.items())

    def option(self, name: str) -> Option:
        try:
            return self._options[name]
        except KeyError:
            raise OptionsError(f"no option named {name!r}") from None

    def keys(self) -> set[str]:
        return set(self._options)

    def update(self, **kwargs: Any) -> None:
        """Set typed values; all are validated before any is applied."""
        checked = {name: self.option(name).check(v) for name, v in kwargs.items()}
        old = {name: self._options[name].value for name in checked}
        changed = set()
        for name, v in checked.items():
            opt = self._options[name]
            if opt.value != v:
                opt.value = v
                changed.add(name)
        if changed:
            try:
                self._notify(changed)
            except OptionsError:
                # An addon rejected the new value: put the old ones back and tell the caller.
                for name, v in old.items():
                    self._options[name].value = v
                self._notify(changed)
                raise

    def set(self, *specs: str, defer: bool = False) -> None:
        """Apply `NAME=VALUE` texts. With `defer`, unknown names wait for an addon to declare them."""
        self.update(**self.parse_specs(*specs, defer=defer))

    def parse_specs(self, *specs: str, defer: bool = False) -> dict[str, Any]:
        """The typed values of `NAME=VALUE` texts, as `--set` reads them (a list option's items add up),
        not yet checked nor applied: `update` does that. The one way from text to a value, for `--set`
        and the terminal UI's options editor alike."""
        values: dict[str, Any] = {}
        for spec in specs:
            name, sep, text = spec.partition("=")
            name = name.strip().replace("-", "_")
            if not sep:
                raise OptionsError(f"--set expects NAME=VALUE, got {spec!r}")
            if name not in self._options:
                if defer:
                    self._deferred.setdefault(name, []).append(text)
                    continue
                raise OptionsError(f"unknown option {name!r}")
            opt = self._options[name]
            values[name] = opt.parse(text, values.get(name, opt.value if not opt.is_list else []))
        return values

    def unknown_deferred(self) -> list[str]:
        return sorted(self._deferred)

    def defer_soft(self, name: str, text: str, source: str) -> None:
        """Keep `name=text` from a config file (`source`) until an addon declares `name`; if none does, it
        is reported and dropped at start (`drop_soft`), not an error like an unknown `--set`."""
        self._deferred.setdefault(name, []).append(text)
        self._soft[name] = source

    def soft_names(self) -> list[str]:
        """Options from config files that nothing has declared yet."""
        return sorted(n for n in self._soft if n in self._deferred)

    def drop_soft(self) -> list[tuple[str, str]]:
        """Forget the still-unknown options that came from config files: (name, file) of each."""
        gone = [(n, src) for n, src in self._soft.items() if n in self._deferred]
        for n, _ in gone:
            del self._deferred[n]
        self._soft.clear()
        return gone

    def reset(self, name: str) -> None:
        self.update(**{name: self.option(name).default})


def _check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise OptionsError(f"a port is a number from 0 to 65535, not {port}")


def _check_host(host: str) -> None:
    if not host.strip() or any(c.isspace() for c in host):
        raise OptionsError(f"not a host name or address: {host!r}")


def _check_regex(text: str) -> None:
    try:
        re.compile(text)
    except re.error as e:
        raise OptionsError(f"invalid regular expression {text!r}: {e}") from None


def _check_filter(expr: str) -> None:
    try:
        flowfilter.parse(expr)
    except flowfilter.FilterError as e:
        raise OptionsError(f"invalid filter: {str(e).splitlines()[0]}") from None


def core_options(opts: Options) -> None:
    """Declare every option the core itself uses."""
    add = opts.add_option
    # listen_host, listen_port and mode re-bind the listener when changed at run time (Master.set_options).
    add("listen_host", str, "127.0.0.1", "Address to bind the proxy to.", validate=_check_host)
    add("listen_port", int, 8080, "Port to bind the proxy to; 0 picks a free one.", validate=_check_port)
    add("mode", str, "regular", "regular, upstream:URL (http:// or https://), "
        "reverse:URL (http://, https:// or h2c://), socks5 or transparent (Linux).", validate=Mode.parse)
    add("scripts", Sequence[str], [], "Addon scripts to load (hot-reloaded on change).")
    add("confdir", str, "~/.interpose", "Where the CA and settings live.")
    add("ssl_insecure", bool, False, "Do not verify upstream TLS certificates.")
    add("ssl_verify_upstream_trusted_ca", str | None, None, "Extra PEM bundle trusted for upstream verification.")
    add("ignore_hosts", Sequence[str], [], "Regexes of host:port whose TLS passes through untouched.",
        validate=_check_regex)
    add("tcp_hosts", Sequence[str], [], "Regexes of host:port relayed as raw TCP flows.", validate=_check_regex)
    add("intercept", str | None, None, "Intercept flows matching this filter expression.", validate=_check_filter)
    add("intercept_at", str, "request,response",
        "Stages the intercept filter holds flows at: requestheaders, request, responseheaders, response, messages.")
    add("save_stream_file", str | None, None, "Write every finished flow to this file (+FILE appends).")
    add("rfile", str | None, None, "Load flows from this flow file or .har at start.")
    add("session", str | None, None, "Record every flow and the workspace into this session file (reopened if it "
        "exists); the TUI without it records into a temporary session under CONFDIR/sessions.")
    add("keepserving", bool, False, "interpose-dump: keep serving after the flows of -r are processed.")
    add("quiet", bool, False, "interpose-dump: print nothing per flow.")
    add("flow_detail", int, 1, "interpose-dump: 0 prints nothing, 1 one line per flow, 2 adds headers, 3 adds bodies.")
    add("showhost", bool, False, "Show URLs with the Host header's host (flow list, flow view, interpose-dump) "
        "instead of the address the request went to.")
    add("body_size_limit", str | None, None, "Refuse bodies larger than this (e.g. 10m); unset means no limit.",
        validate=parse_size)
    add("stream_large_bodies", str | None, "4m", "Bodies above this size stream through instead of being buffered.",
        validate=parse_size)
    add("decode_limit", str | None, "32m",
        "Largest decoded body (Content-Encoding undone, each step of a chain too); a body that would inflate "
        "past it is not decoded: .content/.text raise BodyTooLarge. Unset: no limit.", validate=parse_size)
    # The flow model cannot see options: it keeps the limit itself (interpose.model.encoding).
    encoding.set_decode_limit(parse_size(opts.decode_limit))
    opts.subscribe(lambda updated: encoding.set_decode_limit(parse_size(opts.decode_limit))
                   if "decode_limit" in updated else None)
    add("header_size_limit", str, "64k", "Largest request head accepted (431 above it).", validate=parse_size)
    add("body_spill_threshold", str | None, "256k",
        "TUI: bodies (and WebSocket/TCP messages) of finished flows at least this big are moved to a private "
        "temporary file and read back when needed; unset: never by size.", validate=parse_size)
    add("flow_memory_limit", str | None, "512m",
        "TUI: memory the bodies of finished flows may take; above it the oldest flows' bodies are moved to the "
        "temporary file too (bodies under 512 bytes stay). Unset: no limit.", validate=parse_size)
    add("proxyauth", str | None, None, "Require proxy authentication: user:pass, any, or @htpasswd-file.")
    add("max_messages", int, 10_000,
        "WebSocket/TCP messages kept per flow (the newest); counters keep totals. 0 keeps all.")
    add("max_message_bytes", str | None, "32m",
        "Bytes of WebSocket/TCP message contents kept per flow (the newest); counters keep totals. Unset keeps all.",
        validate=parse_size)
    add("websocket_max_message_size", str | None, "16m",
        "Largest WebSocket message (all its fragments); a bigger one closes both sides with 1009. Unset: no limit.",
        validate=parse_size)
    # onboarding (tui-onboard): the page at http://interpose.it/ through the proxy
    add("onboarding", bool, True, "Answer requests to onboarding_host through the proxy with the CA install page.")
    add("onboarding_host", str, "interpose.it", "Host of the onboarding page (http:// and https:// through the proxy).",
        validate=_host_name)
    add("keep_host_header", bool, False, "reverse mode: forward the client's Host header unchanged.")
    add("connect_timeout_s", float, 10.0, "Seconds to wait for a server connection.")
    add("header_read_timeout_s", float, 60.0, "Seconds a client may take to send a request head.")
    add("idle_timeout_s", float, 300.0, "Seconds an idle client connection is kept open.")
    add("read_timeout_s", float, 60.0,
        "Seconds a server may stay silent while the proxy waits for its response (head or body).")
    add("server_reuse", bool, True, "Keep idle server connections after their client disconnects and reuse them "
        "for the next client going to the same server (serverconnect fires per real connection).")
    _tls_options(add)
    add("termlog_verbosity", str, "info", "interpose-dump: the least important log lines printed (-v: debug).",
        choices=("error", "warn", "info", "debug"))
    # The terminal UI's layout (mitmproxy's option): the flow list alone, with the focused flow beside it
    # (horizontal) or below it (vertical). `-` cycles it.
    add("console_layout", str, "single", "TUI layout: single, horizontal (list and flow side by side) or "
        "vertical (stacked).", choices=("single", "horizontal", "vertical"))


TLS_VERSIONS = ("UNBOUNDED", "SSL3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")


def _tls_options(add: Callable[..., None]) -> None:
    """The TLS options of issue 19 (docs/tls.md); the proxy checks them together (interpose.proxy.tls.config)."""
    add("certs", Sequence[str], [],
        "Serve this certificate (key + chain in one PEM) for matching hosts: [DOMAIN=]PATH, DOMAIN may be "
        "*.example.com or * (repeatable).")
    add("upstream_cert", bool, True, "Copy the real server certificate's names (SANs, CN) into the forged one.")
    add("client_certs", str | None, None,
        "Client certificate to present to servers that ask: a PEM (key + certificate) or a directory of HOST.pem.")
    add("tls_version_client_min", str, "TLS1_2", "Lowest TLS version accepted from clients.", choices=TLS_VERSIONS)
    add("tls_version_client_max", str, "UNBOUNDED", "Highest TLS version accepted from clients.", choices=TLS_VERSIONS)
    add("tls_version_server_min", str, "TLS1_2", "Lowest TLS version spoken to servers.", choices=TLS_VERSIONS)
    add("tls_version_server_max", str, "UNBOUNDED", "Highest TLS version spoken to servers.", choices=TLS_VERSIONS)
    add("allow_hosts", Sequence[str], [],
        "Regexes of host:port: intercept only these, pass the rest through untouched (not with ignore_hosts).")
