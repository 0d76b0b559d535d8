"""Save finished flows matching save_filter to save_file (another -w).

`-s addons/save.py --set save_file=api.interpose --set save_filter='~d api.example.com'` writes the
matching flows to their own flow file, next to (or instead of) `-w`. `+FILE` appends. Same format,
same moments as `-w` (core/runtime/builtins/save.py): a flow is written once it is finished. Reloading this script
reopens the file, so use `+FILE` if it must survive a reload.
"""
from __future__ import annotations

from interpose import ctx
from interpose.runtime.builtins.save import SaveStream


def _log(msg: str, level: str) -> None:
    ctx.log(msg, level)


addons = [SaveStream(option="save_file", filter_option="save_filter", log=_log)]
