"""The command line both `interpose` and `interpose-dump` take, turned into options."""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from interpose import flowfilter
from interpose.errors import InterposeError, OptionsError
from interpose.proxy.modes import Mode
from interpose.runtime import script
from interpose.runtime.commands import config
from interpose.runtime.options import Options, core_options


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """`--version`: print `interpose X.Y.Z` and exit 0 (the metadata is read only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import interpose

        print(f"interpose {interpose.__version__}")  # on stdout, like argparse's own version action
        parser.exit(0)


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=description)
    a = p.add_argument
    a("--version", action=_Version, help="print the version and exit")
    a("--listen-host", metavar="H", help="bind address (default 127.0.0.1)")
    a("-p", "--listen-port", metavar="N", type=int, help="port; 0 picks a free one (default 8080)")
    a("--mode", metavar="M", help="regular, upstream:URL, reverse:URL, socks5 or transparent (default regular)")
    a("-s", "--script", metavar="PATH", action="append", default=[], dest="scripts",
      help="load an addon script (repeatable); reloaded when it changes")
    a("--set", metavar="NAME=VALUE", action="append", default=[], dest="setoptions",
      help="set any option, including ones addons declare (repeatable)")
    a("--confdir", metavar="DIR", help="where the CA and settings live (default ~/.interpose)")
    a("--ssl-insecure", action="store_true", default=None, help="do not verify upstream TLS certificates")
    a("--ignore-hosts", metavar="REGEX", action="append", default=[], help="pass TLS through for matching host:port")
    a("--allow-hosts", metavar="REGEX", action="append", default=[],
      help="intercept only matching host:port, pass the rest through (repeatable)")
    a("--certs", metavar="[DOMAIN=]PEM", action="append", default=[],
      help="serve this certificate (key + chain in one PEM) for matching hosts (repeatable)")
    a("-i", "--intercept", metavar="FILTER", help="intercept flows matching a filter expression")
    a("-w", "--save", metavar="FILE", dest="save_stream_file", help="write finished flows to FILE (+FILE appends)")
    a("-r", "--read", metavar="FILE", dest="rfile", help="load flows from a flow file or .har at start")
    a("--session", metavar="FILE", help="record into (and reopen) a session file")
    a("--keepserving", action="store_true", default=None, help="keep serving after the flows of -r are processed")
    a("-q", "--quiet", action="store_true", default=None, help="print nothing per flow")
    a("--options", action="store_true", dest="list_options",
      help="print every option (name, type, default, help) as YAML and exit")
    a("--commands", action="store_true", dest="list_commands", help="print every command and exit")
    # mitmproxy's spellings of the same things
    a("--save-stream-file", metavar="FILE", dest="save_stream_file", help=argparse.SUPPRESS)
    a("--rfile", metavar="FILE", dest="rfile", help=argparse.SUPPRESS)
    a("--flow-detail", metavar="N", type=int, dest="flow_detail", help="interpose-dump: 0-3, how much to print")
    a("--tcp-hosts", metavar="REGEX", action="append", default=[], dest="tcp_hosts",
      help="relay matching host:port as raw TCP (repeatable)")
    a("--proxyauth", metavar="SPEC", help="require proxy authentication: user:pass, any or @htpasswd-file")
    a("--anticache", action="store_true", help="load the anticache addon: strip conditional-request headers")
    a("--anticomp", action="store_true", help="load the anticomp addon: ask servers for uncompressed bodies")
    a("--showhost", action="store_true", default=None,
      help="show URLs with the Host header's host, not the address the request went to (option showhost)")
    a("-v", "--verbose", action="count", default=0,
      help="dump: show debug log lines (-vv also headers per flow, -vvv bodies too)")
    return p


def config_path(args: argparse.Namespace) -> str:
    return os.path.join(os.path.expanduser(args.confdir or "~/.interpose"), "config.yaml")


def options_from_args(args: argparse.Namespace) -> Options:
    """Build the options; raise OptionsError for anything a user got wrong."""
    opts = Options()
    core_options(opts)
    cfg = config_path(args)
    if os.path.exists(cfg):
        config.load_into(opts, cfg)  # defaults < config.yaml < flags; unknown names are reported at start
    direct: dict[str, Any] = {}
    for name in ("listen_host", "listen_port", "mode", "confdir", "ssl_insecure", "intercept",
                 "save_stream_file", "rfile", "session", "keepserving", "quiet", "flow_detail", "proxyauth",
                 "showhost"):
        value = getattr(args, name)
        if value is not None:
            direct[name] = value
    for name in ("ignore_hosts", "allow_hosts", "certs", "tcp_hosts"):
        if getattr(args, name):
            direct[name] = getattr(args, name)
    opts.update(**direct)
    opts.set(*args.setoptions, defer=True)
    Mode.parse(opts.mode)
    if opts.intercept:
        try:
            flowfilter.parse(opts.intercept)
        except flowfilter.FilterError as e:
            raise OptionsError(f"invalid intercept filter: {e}") from None
    if not 0 <= opts.listen_port <= 65535:
        raise OptionsError(f"invalid port {opts.listen_port}")
    scripts = list(args.scripts) or list(opts.scripts)
    for name in ("anticache", "anticomp"):  # mitmproxy's switches: the bundled addon, on
        if getattr(args, name):
            from interpose.runtime.commands.bundled import bundled_addons
            path = bundled_addons()[name]
            if path not in scripts:
                scripts.append(path)
            opts.set(f"{name}=true", defer=True)
    if opts.soft_names():
        # mitmproxy has these addons built in: a config.yaml naming their options (anticache: true,
        # map_remote: [...]) gets the bundled addon that declares them.
        owners = bundled_option_owners()
        for name in opts.soft_names():
            if name in owners and owners[name] not in scripts:
                scripts.append(owners[name])
    if args.verbose:
        opts.update(termlog_verbosity="debug")
        if args.verbose >= 2 and args.flow_detail is None:
            opts.update(flow_detail=min(args.verbose, 3))
    for path in scripts:
        full = script.resolve(path)  # a file, or an installed module's dotted name
        if not os.path.isfile(full) or not os.access(full, os.R_OK):
            raise OptionsError(f"cannot read script {path}: no such readable file or importable module")
    if opts.rfile and opts.save_stream_file:
        # -w truncates its file before -r could read it: refuse rather than lose the flows.
        read, write = (os.path.abspath(os.path.expanduser(p.lstrip("+"))) for p in (opts.rfile, opts.save_stream_file))
        if read == write:
            raise OptionsError(f"-r and -w name the same file ({opts.rfile}); write to another file")
    if opts.rfile and opts.session:
        read, rec = (os.path.abspath(os.path.expanduser(p.lstrip("+"))) for p in (opts.rfile, opts.session))
        if read == rec:
            raise OptionsError(f"-r and --session name the same file ({opts.rfile}); to reopen it, use --session alone")
    opts.update(scripts=scripts)
    return opts


def _bundled_loads() -> list[tuple[str, Any]]:
    """(path, addon) of every bundled addon, each module loaded afresh (not into any chain)."""
    from interpose.runtime.commands.bundled import bundled_addons

    out: list[tuple[str, Any]] = []
    for path in bundled_addons().values():
        try:
            module = script.load_module(path)
        except Exception:  # noqa: S112 - a listing shows what it can
            continue
        out.extend((path, a) for a in getattr(module, "addons", []))
    return out


def bundled_option_owners() -> dict[str, str]:
    """Option name → path of the bundled addon that declares it."""
    from interpose.runtime.addonmanager import Loader

    owners: dict[str, str] = {}
    for path, addon in _bundled_loads():
        scratch = Options()
        fn = getattr(addon, "load", None)
        if callable(fn):
            try:
                fn(Loader(scratch, {}))
            except Exception:  # noqa: S112 - an addon whose load needs more than a loader is skipped
                continue
        for name in scratch.keys():
            owners.setdefault(name, path)
    return owners


def all_options() -> Options:
    """The core's options and every bundled addon's (for --options)."""
    from interpose.runtime.addonmanager import Loader
    from interpose.runtime.master import Master

    opts = Master().options  # a master sets ctx, which some addons' `load` logs through
    loader = Loader(opts, {})
    for _path, addon in _bundled_loads():
        fn = getattr(addon, "load", None)
        if callable(fn):
            try:
                fn(loader)
            except Exception:  # noqa: S112 - a listing shows what it can
                continue
    return opts


def print_listing(args: argparse.Namespace, extra_commands: Callable[[Any], None] | None) -> None:
    if args.list_options:
        print(config.describe(all_options()), end="")
        return
    from interpose.runtime.commands.builtin import describe
    from interpose.runtime.master import Master

    master = Master()
    if extra_commands is not None:
        extra_commands(master.commands)
    print(describe(master.commands), end="")


def install_event_loop_policy() -> None:
    """Use uvloop when it is installed (the `fast` extra), unless the environment variable
    INTERPOSE_EVENT_LOOP says `asyncio` (then the standard loop, uvloop or not). `uvloop` there makes a
    missing uvloop an error instead of a quiet fallback."""
    choice = os.environ.get("INTERPOSE_EVENT_LOOP", "").strip().lower()
    if choice == "asyncio":
        return
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise InterposeError("INTERPOSE_EVENT_LOOP=uvloop but uvloop is not installed "
                                 "(pip install 'interpose[fast]')") from None
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(prog: str, description: str, body: Callable[[Options], Any], argv: list[str] | None = None,
        extra_commands: Callable[[Any], None] | None = None) -> int:
    """Parse the command line and run `body(options)` (a coroutine function) on one event loop.
    `extra_commands(registry)` adds the front end's own commands (for --commands)."""
    args = make_parser(prog, description).parse_args(argv)
    if args.list_options or args.list_commands:
        print_listing(args, extra_commands)
        return 0
    try:
        opts = options_from_args(args)
    except InterposeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    try:
        install_event_loop_policy()
        return asyncio.run(body(opts)) or 0
    except InterposeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog}: error: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def on_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError):
            pass
