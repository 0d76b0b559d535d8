"""`script.run FLOWS PATH`: run a script's hooks once on flows that already happened (mitmproxy's command),
as if each flow passed through the proxy again, without loading the script into the chain."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from interpose.errors import AddonError
from interpose.runtime import script
from interpose.runtime.addonmanager import AddonManager
from interpose.runtime.builtins.readfile import hook_sequence
from interpose.runtime.bus import EventBus


async def run_script_on(master: Any, path: str, flows: Sequence[Any]) -> int:
    """Load the script afresh, pass each flow through its hooks in order, then `done`. Returns how many
    flows it saw. Runs on the core's loop. A script that cannot load raises AddonError."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise AddonError(f"script.run: no such file {path}")
    module = script.load_module(full)
    addons = list(getattr(module, "addons", None) or [module])
    manager = AddonManager(master.options, EventBus(), master.add_log)  # its own chain: not the proxy's
    manager.add(*addons)
    try:
        for flow in flows:
            for hook in hook_sequence(flow):
                await manager.trigger(hook)
    finally:
        for a in list(manager.chain):
            manager.remove(a)
        master.options.unsubscribe(manager._options_changed)
    return len(flows)
