"""interpose: an interactive, TLS-capable intercepting proxy. This package is its engine and its API.

Addons import from here: `from interpose import ctx, command`,
`from interpose.http import HTTPFlow, Request, Response, Headers`, `interpose.websocket`, `interpose.tcp`,
`interpose.flowfilter`. The rest of the package is grouped by concern (docs/architecture.md):
`model` (flows), `proxy` (server, layers, TLS), `runtime` (master, addons, options, bus),
`store` (flow files, HAR, export), `cli`. Nothing in the engine imports urwid.
"""
from typing import Any

from interpose import command, ctx
from interpose.errors import InterposeError, OptionsError
from interpose.model.flow import Error, Flow


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata on demand: it costs milliseconds at start
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("interpose")
        except PackageNotFoundError:  # a checkout that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'interpose' has no attribute {name!r}")

__all__ = ["command", "ctx", "Error", "Flow", "InterposeError", "OptionsError", "__version__"]
