"""Tests of the bundled addons, each loaded as users load it: `-s addons/NAME.py`, then `--set` rules.

    proxy = await start(make_proxy, "blocklist", "block_list=/~u /ads/404")

`start` runs the real proxy with the script in `scripts` (what `-s` sets) and then applies the
`--set NAME=VALUE` texts, parsed exactly as the command line's are (one text per list item). Setting
them after the script is loaded goes through the addon's `configure`, so a bad rule raises
`OptionsError` right there, as the TUI's options editor and `ctx.options` assignments would.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

ADDONS = Path(__file__).resolve().parents[2] / "addons"


def script(name: str) -> str:
    return str(ADDONS / f"{name}.py")


async def start(make_proxy: Any, name: str, *sets: str, addons: tuple[Any, ...] = (), **opts: Any) -> Any:
    """A running proxy with addons/NAME.py loaded (after `addons`), then the `--set` texts applied."""
    proxy = await make_proxy(*addons, scripts=[script(name)], **opts)
    if sets:
        proxy.options.set(*sets)
    return proxy


def client(proxy: Any, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, trust_env=False, timeout=10, **kw)


def echoed(resp: httpx.Response) -> dict[str, Any]:
    """What /echo says the origin received; `hdrs` maps lower-cased names to the last value."""
    data: dict[str, Any] = json.loads(resp.content)
    data["hdrs"] = {k.lower(): v for k, v in data["headers"]}
    return data


def header_values(received: Any, name: str) -> list[str]:
    return [v for k, v in received.headers if k.lower() == name.lower()]



def instance(proxy: Any, cls_name: str) -> Any:
    """The addon object of that class in the running proxy's chain (e.g. a loaded script's)."""
    from interpose.runtime.addonmanager import traverse

    return next(a for a in traverse(proxy.master.addons.chain) if type(a).__name__ == cls_name)
