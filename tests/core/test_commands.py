"""The command registry: typed arguments, flow selectors, parsing, completion, one-line errors; the core's
commands; config.yaml; --options and --commands without a terminal."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import pytest
import yaml

from interpose import command
from interpose.model.flow import Flow
from interpose.runtime.commands import CommandError, lexer
from interpose.runtime.master import Master

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Source:
    def __init__(self, flows: list[Flow]) -> None:
        self.flows = flows
        self.shown = flows[:2]

    def all_flows(self) -> list[Flow]:
        return self.flows

    def shown_flows(self) -> list[Flow]:
        return self.shown

    def focused_flow(self) -> Flow | None:
        return self.flows[0]


class Counter:
    def __init__(self) -> None:
        self.seen: list[object] = []

    @command.command("counter.add")
    def add(self, flows: Sequence[Flow], n: int, loud: bool, fmt: Annotated[str, command.Choice("a", "b")],
            path: command.Path, *rest: str) -> int:
        """Count flows."""
        self.seen.append((len(flows), n, loud, fmt, path, rest))
        return len(flows) * n


def test_lexer_quotes_and_partial() -> None:
    assert lexer.split('set a="b c" \'d e\' f\\ g') == ["set", "a=b c", "d e", "f g"]
    with pytest.raises(CommandError, match="unclosed"):
        lexer.split("set 'abc")
    assert lexer.partial("flow.kill @fo") == (["flow.kill"], 10, "@fo")
    assert lexer.partial("flow.kill ") == (["flow.kill"], 10, "")


def test_addon_command_typed_arguments_and_errors() -> None:
    m = Master()
    c = Counter()
    m.addons.add(c)
    reg = m.commands
    flows = _flows(4)
    flows[3].marked = True
    reg.flow_source = Source(flows)
    assert reg.execute("counter.add @all 2 yes a /tmp x y") == 8
    assert c.seen[-1] == (4, 2, True, "a", "/tmp", ("x", "y"))
    assert reg.execute("counter.add @marked 1 no b p") == 1
    assert reg.execute("counter.add @unmarked 1 no b p") == 3
    assert reg.execute("counter.add @hidden 1 no b p") == 2
    assert reg.execute("counter.add @focus 1 no b p") == 1
    assert reg.execute("counter.add '~u /2' 1 no b p") == 1
    for line, expected in [
        ("counter.add @all x no a p", "counter.add: n: expected a whole number, not 'x'"),
        ("counter.add @all 1 maybe a p", "counter.add: loud: expected true or false"),
        ("counter.add @all 1 no c p", "counter.add: fmt: expected one of a, b, not 'c'"),
        ("counter.add @nope 1 no a p", "unknown flow selector '@nope'"),
        ("counter.add @all 1", "counter.add: missing loud (true or false); usage: counter.add flows n loud fmt path"),
        ("nosuch.cmd", "unknown command 'nosuch.cmd'"),
    ]:
        with pytest.raises(CommandError) as e:
            reg.execute(line)
        assert expected in str(e.value) and "\n" not in str(e.value)
    # completion: names, selectors, choices, bools
    assert reg.complete("counter.a") == (0, ["counter.add"])
    assert reg.complete("counter.add @m")[1] == ["@marked"]
    assert reg.complete("counter.add @all 1 ")[1] == ["true", "false"]
    assert reg.complete("counter.add @all 1 no ")[1] == ["a", "b"]
    m.addons.remove(c)
    assert reg.get("counter.add") is None


def _flows(n: int) -> list[Flow]:
    from interpose.http import HTTPFlow, Request
    from interpose.model.connection import Client, Server
    out = []
    for i in range(n):
        f = HTTPFlow(Client(("127.0.0.1", 1)), Server(("example.com", 80)))
        f.request = Request.make("GET", f"http://example.com/{i}")
        out.append(f)
    return out


async def test_set_options_and_addon_commands(tmp_path: Path) -> None:
    m = Master()
    reg = m.commands
    await reg.run("set intercept=~q")
    assert m.options.intercept == "~q"
    await reg.run("set intercept")
    assert m.options.intercept is None
    await reg.run("set ssl_insecure toggle")
    assert m.options.ssl_insecure is True
    assert reg.complete("set intercept_a")[1] == ["intercept_at="]
    assert reg.complete("set ssl_insecure=")[1] == ["ssl_insecure=true", "ssl_insecure=false"]
    await reg.run(f"options.save {tmp_path}/o.yaml")
    assert yaml.safe_load((tmp_path / "o.yaml").read_text()) == {"ssl_insecure": True}
    await reg.run("options.reset")
    assert m.options.ssl_insecure is False
    await reg.run(f"options.load {tmp_path}/o.yaml")
    assert m.options.ssl_insecure is True
    assert reg.complete("addon.load antic")[1] == ["anticache", "anticomp"]
    with pytest.raises(CommandError, match="no bundled addon or file 'nosuch'"):
        await reg.run("addon.load nosuch")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interpose.cli.dump", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_options_and_commands_listings_without_a_terminal() -> None:
    r = _cli("--options")
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(r.stdout)
    assert data["listen_port"] == {"type": "int", "default": 8080, "help": "Port to bind the proxy to; 0 picks a "
                                   "free one."}
    assert data["anticache"]["type"] == "bool"  # bundled addons' options too
    r = _cli("--commands")
    assert r.returncode == 0, r.stderr
    assert "set option *value" in r.stdout and "addon.toggle name" in r.stdout


def test_config_yaml_precedence_and_unknown(tmp_path: Path) -> None:
    from interpose.cli import args as cli
    (tmp_path / "config.yaml").write_text("listen_port: 9999\nssl_insecure: true\nintercept: ~q\nno_such: 1\n")
    ns = cli.make_parser("t", "t").parse_args(["--confdir", str(tmp_path), "-p", "7777"])
    opts = cli.options_from_args(ns)
    assert (opts.listen_port, opts.ssl_insecure, opts.intercept) == (7777, True, "~q")
    assert opts.drop_soft() == [("no_such", "config.yaml")]
    (tmp_path / "config.yaml").write_text("a: 1\nb: [\n")
    r = _cli("--confdir", str(tmp_path), "-p", "0")
    assert r.returncode == 2 and "config.yaml line 3: not valid YAML" in r.stderr and "Traceback" not in r.stderr


def test_interpose_tui_lists_its_commands_and_options_without_a_terminal() -> None:
    for flag, expect in (("--commands", "console.key.bind contexts key cmd *args"), ("--options", "console_layout:")):
        r = subprocess.run([sys.executable, "-m", "interpose.tui.app", flag], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert expect in r.stdout
    r = subprocess.run([sys.executable, "-m", "interpose.tui.app", "--commands"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    for name in ("flow.mark.toggle flows", "cut.save flows cuts path", "addon.toggle name", "console.layout.cycle",
                 "flow.comment flow *comment", "repeater.new url", "script.run flows path"):
        assert name in r.stdout, name


def test_path_arguments_complete_from_the_disk(tmp_path: Path) -> None:
    (tmp_path / "conf.yaml").write_text("")
    (tmp_path / "confdir").mkdir()
    reg = Master().commands
    start, cands = reg.complete(f"options.load {tmp_path}/con")
    assert start == len("options.load ")
    assert cands == [f"{tmp_path}/conf.yaml", f"{tmp_path}/confdir/"]
