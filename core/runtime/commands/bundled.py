"""The addons shipped with interpose, by name."""
from __future__ import annotations

import importlib.util
import os


def bundled_addons() -> dict[str, str]:
    """Name → path of every addon shipped with interpose. The package is found, not imported: addons are
    loaded as scripts by path (the core does not import interpose.addons)."""
    spec = importlib.util.find_spec("interpose.addons")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = list(spec.submodule_search_locations)[0]
    return {f[:-3]: os.path.join(folder, f) for f in sorted(os.listdir(folder))
            if f.endswith(".py") and not f.startswith("_")}
