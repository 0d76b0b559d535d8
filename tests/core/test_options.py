"""Options: defaults, typed validation, `--set` parsing, sizes, deferral, subscriptions; proxy modes."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pytest

from interpose.errors import OptionsError
from interpose.proxy.modes import Mode
from interpose.runtime.options import Options, core_options, parse_size


@pytest.fixture
def opts() -> Options:
    o = Options()
    core_options(o)
    return o


class Spy:
    def __init__(self) -> None:
        self.calls: list[set[str]] = []

    def __call__(self, updated: set[str]) -> None:
        self.calls.append(set(updated))


# -- defaults and reading ----------------------------------------------------------


def test_core_defaults(opts):
    assert opts.listen_host == "127.0.0.1"
    assert opts.listen_port == 8080
    assert opts.mode == "regular"
    assert opts.scripts == []
    assert opts.confdir == "~/.interpose"
    assert opts.ssl_insecure is False
    assert opts.ssl_verify_upstream_trusted_ca is None
    assert opts.ignore_hosts == [] and opts.tcp_hosts == []
    assert opts.intercept is None
    assert opts.intercept_at == "request,response"
    assert opts.save_stream_file is None and opts.rfile is None
    assert opts.keepserving is False and opts.quiet is False
    assert opts.body_size_limit is None
    assert parse_size(opts.header_size_limit) == 64 * 1024
    assert opts.proxyauth is None
    assert opts.flow_detail == 1


def test_every_spec_option_exists(opts):
    spec = {"listen_host", "listen_port", "mode", "scripts", "confdir", "ssl_insecure", "ignore_hosts", "intercept",
            "save_stream_file", "rfile", "keepserving", "quiet", "intercept_at", "body_size_limit",
            "stream_large_bodies", "header_size_limit", "tcp_hosts", "ssl_verify_upstream_trusted_ca",
            "proxyauth", "flow_detail"}
    assert spec <= opts.keys()
    for name, opt in opts.items():
        assert opt.help, name


def test_introspection(opts):
    assert "listen_port" in opts
    assert "nope" not in opts
    assert list(opts) == sorted(opts.keys())
    assert [n for n, _ in opts.items()] == sorted(opts.keys())
    assert opts.option("listen_port").default == 8080
    with pytest.raises(OptionsError, match="nope"):
        opts.option("nope")
    with pytest.raises(AttributeError, match="nope"):
        opts.nope  # noqa: B018


def test_default_lists_are_not_shared(opts):
    opts.update(ignore_hosts=["a"])
    other = Options()
    core_options(other)
    assert other.ignore_hosts == []
    opts.reset("ignore_hosts")
    assert opts.ignore_hosts == []


# -- typed validation ----------------------------------------------------------------


@pytest.mark.parametrize("name,value,needle", [
    ("listen_port", "8080", "whole number"),
    ("listen_port", True, "whole number"),
    ("listen_port", 1.5, "whole number"),
    ("ssl_insecure", "yes", "true or false"),
    ("ssl_insecure", 1, "true or false"),
    ("listen_host", 127, "text"),
    ("listen_host", None, "text"),
    ("scripts", "one.py", "list"),
    ("scripts", ["ok.py", 3], "list of strings"),
    ("connect_timeout_s", "soon", "number"),
    ("connect_timeout_s", False, "number"),
])
def test_typed_validation_errors(opts, name, value, needle):
    before = getattr(opts, name)
    with pytest.raises(OptionsError) as exc:
        opts.update(**{name: value})
    msg = str(exc.value)
    assert name in msg and needle in msg
    assert getattr(opts, name) == before


def test_valid_typed_values(opts):
    opts.listen_port = 0
    opts.ssl_insecure = True
    opts.intercept = None
    opts.intercept = "~u foo"
    opts.scripts = ("a.py", "b.py")
    opts.connect_timeout_s = 3
    assert opts.listen_port == 0
    assert opts.ssl_insecure is True
    assert opts.intercept == "~u foo"
    assert opts.scripts == ["a.py", "b.py"]  # any sequence becomes a list
    assert opts.connect_timeout_s == 3.0 and isinstance(opts.connect_timeout_s, float)


def test_unknown_option_assignment(opts):
    with pytest.raises(OptionsError, match="nope"):
        opts.nope = 1
    with pytest.raises(OptionsError, match="nope"):
        opts.update(nope=1)


def test_update_is_all_or_nothing(opts):
    with pytest.raises(OptionsError):
        opts.update(listen_port=9999, ssl_insecure="not a bool")
    assert opts.listen_port == 8080


def test_choices(opts):
    opts.add_option("colour", str, "red", "A colour.", choices=["red", "green"])
    opts.colour = "green"
    with pytest.raises(OptionsError) as exc:
        opts.colour = "blue"
    assert "red, green" in str(exc.value) and "blue" in str(exc.value)
    with pytest.raises(OptionsError):
        opts.set("colour=blue")
    assert opts.colour == "green"


# -- --set parsing --------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("true", True), ("True", True), ("yes", True), ("on", True), ("1", True),
    ("false", False), ("FALSE", False), ("no", False), ("off", False), ("0", False),
])
def test_set_bool(opts, text, value):
    opts.set(f"ssl_insecure={text}")
    assert opts.ssl_insecure is value


def test_set_bad_bool(opts):
    with pytest.raises(OptionsError, match="ssl_insecure.*true or false"):
        opts.set("ssl_insecure=maybe")


def test_set_int_float_str(opts):
    opts.set("listen_port=0", "flow_detail=3", "connect_timeout_s=2.5", "listen_host=::1")
    assert (opts.listen_port, opts.flow_detail, opts.connect_timeout_s, opts.listen_host) == (0, 3, 2.5, "::1")
    with pytest.raises(OptionsError, match="listen_port.*whole number.*'eighty'"):
        opts.set("listen_port=eighty")
    with pytest.raises(OptionsError, match="connect_timeout_s.*number"):
        opts.set("connect_timeout_s=soon")
    assert opts.listen_port == 0


def test_set_value_may_contain_equals(opts):
    opts.set("intercept=~h X-Token=abc")
    assert opts.intercept == "~h X-Token=abc"


def test_set_dashes_in_name(opts):
    opts.set("listen-port=1234")
    assert opts.listen_port == 1234


@pytest.mark.parametrize("text", ["", "none", "None", "null"])
def test_set_optional_to_none(opts, text):
    opts.update(intercept="~u x")
    opts.set(f"intercept={text}")
    assert opts.intercept is None


def test_set_optional_value(opts):
    opts.set("intercept=~d example.com", "body_size_limit=10m")
    assert opts.intercept == "~d example.com"
    assert opts.body_size_limit == "10m"


def test_set_list_appends_per_set(opts):
    opts.set("ignore_hosts=a\\.com", "ignore_hosts=b\\.com:443", "tcp_hosts=x")
    assert opts.ignore_hosts == ["a\\.com", "b\\.com:443"]
    assert opts.tcp_hosts == ["x"]
    opts.set("ignore_hosts=")
    assert opts.ignore_hosts == []


def test_set_errors(opts):
    with pytest.raises(OptionsError, match="NAME=VALUE"):
        opts.set("listen_port")
    with pytest.raises(OptionsError, match="unknown option 'nope'"):
        opts.set("nope=1")


def test_set_all_or_nothing(opts):
    with pytest.raises(OptionsError):
        opts.set("listen_port=1", "listen_host=x", "ssl_insecure=perhaps")
    assert opts.listen_port == 8080 and opts.listen_host == "127.0.0.1"


# -- sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("100", 100), ("64k", 65536), ("64K", 65536), ("1m", 1024**2), ("1M", 1024**2),
    ("2g", 2 * 1024**3), ("1.5k", 1536), (" 10 k ", 10240), ("10kb", 10240), ("10KiB", 10240), ("7b", 7),
    (None, None), ("", None), (4096, 4096),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "k", "10x", "-1", "1t", "1 0k", "1..5m"])
def test_parse_size_bad(text):
    with pytest.raises(OptionsError) as exc:
        parse_size(text)
    assert repr(text) in str(exc.value)
    assert "k, m or g" in str(exc.value)


@pytest.mark.parametrize("name", ["body_size_limit", "stream_large_bodies", "header_size_limit"])
def test_size_options_reject_bad_sizes_when_set(opts, name):
    before = getattr(opts, name)
    with pytest.raises(OptionsError) as exc:
        opts.set(f"{name}=lots")
    assert name in str(exc.value) and "'lots'" in str(exc.value)
    assert getattr(opts, name) == before
    with pytest.raises(OptionsError):
        opts.update(**{name: "12q"})
    opts.set(f"{name}=512k")
    assert parse_size(getattr(opts, name)) == 512 * 1024


# -- declaring options, deferral ---------------------------------------------------------


def test_add_option_rules(opts):
    opts.add_option("myopt", str, "a", "Mine.")
    opts.add_option("myopt", str, "ignored", "Declared twice with the same type: kept as is.")
    assert opts.myopt == "a"
    with pytest.raises(OptionsError, match="myopt"):
        opts.add_option("myopt", int, 1, "Another type.")
    with pytest.raises(OptionsError, match="bad_default"):
        opts.add_option("bad_default", int, "one", "A default of the wrong type.")
    opts.add_option("maybe", Optional[int], None,  # noqa: UP045 - typing.Optional on purpose, as scripts write it
                    "Optional, unset.")
    assert opts.maybe is None
    opts.maybe = 4
    opts.set("maybe=none")
    assert opts.maybe is None
    opts.add_option("many", Sequence[str], [], "A list.")
    opts.set("many=x", "many=y")
    assert opts.many == ["x", "y"]
    opts.remove_option("many")
    assert "many" not in opts


def test_deferred_unknown_options_apply_on_declaration(opts):
    spy = Spy()
    opts.subscribe(spy)
    opts.set("myopt=from-cli", "listen_port=1", "mylist=a", "mylist=b", defer=True)
    assert opts.listen_port == 1
    assert opts.unknown_deferred() == ["mylist", "myopt"]
    assert spy.calls == [{"listen_port"}]

    opts.add_option("myopt", str, "default", "Declared by an addon later.")
    assert opts.myopt == "from-cli"
    assert spy.calls[-1] == {"myopt"}
    assert opts.unknown_deferred() == ["mylist"]

    opts.add_option("mylist", Sequence[str], [], "A list declared later.")
    assert opts.mylist == ["a", "b"]
    assert spy.calls[-1] == {"mylist"}
    assert opts.unknown_deferred() == []


def test_deferred_bad_value_is_reported_on_declaration(opts):
    opts.set("count=many", defer=True)
    with pytest.raises(OptionsError, match="count.*whole number"):
        opts.add_option("count", int, 3, "A number.")
    assert opts.count == 3


def test_deferred_value_is_validated_like_any_other(opts):
    opts.set("colour=blue", "limit=huge", defer=True)
    with pytest.raises(OptionsError, match="colour.*blue"):
        opts.add_option("colour", str, "red", "A colour.", choices=["red", "green"])
    assert opts.colour == "red"
    with pytest.raises(OptionsError, match="limit.*huge"):
        opts.add_option("limit", str | None, None, "A size.", validate=parse_size)
    assert opts.limit is None


def test_set_without_defer_rejects_unknown(opts):
    with pytest.raises(OptionsError):
        opts.set("later=1")
    assert opts.unknown_deferred() == []


# -- subscriptions ---------------------------------------------------------------------


def test_subscribers_get_exactly_the_changed_names(opts):
    spy = Spy()
    opts.subscribe(spy)
    opts.listen_port = 1
    opts.update(listen_port=1, listen_host="127.0.0.1", ssl_insecure=True)
    opts.update(listen_port=1)  # nothing changed: nobody is told
    opts.set("quiet=true", "flow_detail=1")
    opts.reset("ssl_insecure")
    assert spy.calls == [{"listen_port"}, {"ssl_insecure"}, {"quiet"}, {"ssl_insecure"}]


def test_every_subscriber_is_told(opts):
    a, b = Spy(), Spy()
    opts.subscribe(a)
    opts.subscribe(b)
    opts.update(listen_port=2, quiet=True)
    assert a.calls == b.calls == [{"listen_port", "quiet"}]


def test_rollback_when_a_subscriber_rejects(opts):
    seen: list[tuple[set[str], int, bool]] = []

    def strict(updated: set[str]) -> None:
        seen.append((set(updated), opts.listen_port, opts.quiet))
        if opts.listen_port == 666:
            raise OptionsError("listen_port 666 is not allowed")

    opts.subscribe(strict)
    with pytest.raises(OptionsError, match="666"):
        opts.update(listen_port=666, quiet=True)
    assert opts.listen_port == 8080
    assert opts.quiet is False
    # Told about the new values, then again about the restored ones so it can resync.
    assert seen == [({"listen_port", "quiet"}, 666, True), ({"listen_port", "quiet"}, 8080, False)]

    opts.listen_port = 7
    assert opts.listen_port == 7
    assert seen[-1] == ({"listen_port"}, 7, False)


def test_other_subscriber_errors_propagate_without_rollback_surprises(opts):
    def broken(updated: set[str]) -> None:
        raise OptionsError("always rejects")

    opts.subscribe(broken)
    with pytest.raises(OptionsError):
        opts.set("listen_port=5")
    assert opts.listen_port == 8080


# -- proxy modes -------------------------------------------------------------------------


@pytest.mark.parametrize("spec,kind,scheme,host,port", [
    ("regular", "regular", "http", "", 0),
    ("REGULAR", "regular", "http", "", 0),
    ("socks5", "socks5", "http", "", 0),
    ("upstream:http://proxy.local:3128", "upstream", "http", "proxy.local", 3128),
    ("upstream:https://proxy.local", "upstream", "https", "proxy.local", 443),
    ("reverse:http://example.com", "reverse", "http", "example.com", 80),
    ("reverse:https://example.com", "reverse", "https", "example.com", 443),
    ("reverse:example.com:8080", "reverse", "http", "example.com", 8080),
    ("Reverse:HTTP://Example.COM:81/", "reverse", "http", "example.com", 81),
    ("reverse:http://[::1]:8081", "reverse", "http", "::1", 8081),
    ("reverse:http://127.0.0.1:9", "reverse", "http", "127.0.0.1", 9),
    ("reverse:h2c://localhost:8081", "reverse", "h2c", "localhost", 8081),
    ("transparent", "transparent", "http", "", 0),
])
def test_mode_parse_good(spec, kind, scheme, host, port):
    m = Mode.parse(spec)
    assert (m.kind, m.scheme, m.host, m.port) == (kind, scheme, host, port)
    if kind in ("upstream", "reverse"):
        assert m.address == (host, port)
    assert Mode.parse(str(m)) == m


@pytest.mark.parametrize("spec,needle", [
    ("", "unknown mode"),
    ("transparentish", "unknown mode"),
    ("transparent:http://x", "takes no URL"),
    ("upstream:h2c://proxy:3128", "reverse mode only"),
    ("regular:http://x", "takes no URL"),
    ("socks5:1080", "takes no URL"),
    ("upstream", "needs a URL"),
    ("reverse:", "needs a URL"),
    ("reverse:ftp://example.com", "invalid URL"),
    ("reverse:http://:80", "invalid URL"),
    ("reverse:http://example.com:99999", "invalid port"),
    ("reverse:http://example.com:port", "invalid port"),
])
def test_mode_parse_bad(spec, needle):
    with pytest.raises(OptionsError) as exc:
        Mode.parse(spec)
    assert needle in str(exc.value)
