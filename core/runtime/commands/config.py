"""Options as YAML: CONFDIR/config.yaml (mitmproxy's format: a mapping of option name to value),
`options.save` / `options.load`, and `--options` (every option with its type, default and help)."""
from __future__ import annotations

import os
from typing import Any

import yaml

from interpose.errors import OptionsError
from interpose.runtime.options import Option, Options


def read_yaml(path: str) -> dict[str, Any]:
    """The mapping in a YAML file; an empty file is {}. Any problem is one OptionsError naming the line."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise OptionsError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise OptionsError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"{path}: expected a mapping of option names to values")
    return data


def _text(value: Any) -> list[str]:
    """A YAML value as the texts `--set` would give (a list gives one text per item)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if value is None:
        return [""]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def values_for(opts: Options, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(typed values of known options, texts of unknown ones by name)."""
    known: dict[str, Any] = {}
    unknown: dict[str, list[str]] = {}
    for raw, value in data.items():
        name = str(raw).replace("-", "_")
        if name not in opts:
            unknown[name] = _text(value)
            continue
        opt = opts.option(name)
        if opt.is_list:
            known[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
        elif isinstance(value, str) or opt.base_type in (str, float) and value is not None:
            known[name] = opt.parse(str(value), opt.value)
        else:
            known[name] = value
    return known, unknown


def load_into(opts: Options, path: str, defer: bool = True) -> list[str]:
    """Apply a config file to `opts`. Unknown names wait for an addon to declare them (`defer`) or are just
    returned. Returns the unknown names."""
    known, unknown = values_for(opts, read_yaml(path))
    opts.update(**known)
    if defer:
        for name, texts in unknown.items():
            for t in texts:
                opts.defer_soft(name, t, os.path.basename(path))
    return sorted(unknown)


def changed_values(opts: Options) -> dict[str, Any]:
    return {name: o.value for name, o in opts.items() if o.value != o.default}


def save(opts: Options, path: str) -> int:
    """Write the options that differ from their defaults (mitmproxy does the same). Returns how many."""
    values = changed_values(opts)
    full = os.path.expanduser(path)
    os.makedirs(os.path.dirname(os.path.abspath(full)), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f, default_flow_style=False, sort_keys=True)
    return len(values)


def type_name(opt: Option) -> str:
    if opt.is_list:
        return "sequence of str"
    t = opt.base_type
    name = getattr(t, "__name__", str(t))
    return f"optional {name}" if opt.optional else name


def describe(opts: Options) -> str:
    """`--options`: every option as YAML: name → type, default, help (and choices)."""
    out: dict[str, Any] = {}
    for name, o in opts.items():
        entry: dict[str, Any] = {"type": type_name(o), "default": o.default, "help": o.help}
        if o.choices:
            entry["choices"] = list(o.choices)
        out[name] = entry
    return str(yaml.safe_dump(out, default_flow_style=False, sort_keys=True, allow_unicode=True, width=100))
