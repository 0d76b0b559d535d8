"""`interpose`: the terminal UI. Until the TUI lands, it runs the proxy and prints flows like interpose-dump."""
from __future__ import annotations

import sys

from core import cli
from core.dump import Dumper, run_proxy
from core.options import Options


async def _run(opts: Options) -> int:
    print("interpose: the terminal UI is not built yet; running headless (flows print below).",
          file=sys.stderr, flush=True)
    return await run_proxy(opts, Dumper())


def main(argv: list[str] | None = None) -> None:
    sys.exit(cli.run("interpose", "interpose: the interactive intercepting proxy.", _run, argv))


if __name__ == "__main__":
    main()
