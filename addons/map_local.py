"""Answer matching requests from local files instead of the server.

`--set map_local=|URL_REGEX|PATH` or `|FILTER|URL_REGEX|PATH` (the first character is the separator;
use one that does not occur in the fields, since paths and URLs are full of `/`). A request whose
filter matches and whose URL the regex finds (re.search, case-sensitive) is answered from PATH:

- PATH is a file: that file, for every matching URL.
- PATH is a directory: the part of the URL path after the match (or the regex's first group, if it
  has one), query string dropped and %-escapes decoded, looked up under PATH; a directory there
  serves its index.html. `|example.com/static|~/site` maps `/static/css/a.css` to `~/site/css/a.css`.
  Nothing outside PATH is ever served: `..`, absolute paths and symlinks leading out are refused.

The answer is 200 with the file's bytes and a Content-Type guessed from its extension; when no
candidate file exists the answer is 404 (the server is not asked). The first rule that yields a file
wins. Rules act at `requestheaders`; from the first rule whose filter reads the body on, at `request`.
"""
from __future__ import annotations

import mimetypes
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from interpose import ctx
from interpose.http import HTTPFlow, Response

try:
    from . import _rules  # imported as addons.map_local
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "map_local"


class Mapping(NamedTuple):
    rule: _rules.Rule
    regex: re.Pattern[str]
    root: Path
    """PATH, resolved (absolute, no symlinks)."""


def parse_rule(text: str) -> Mapping:
    rule = _rules.split(OPTION, text, "/FILTER/URL_REGEX/PATH")
    pattern, path = rule.fields
    regex = _rules.compile_regex(OPTION, text, pattern)
    if not path:
        raise _rules.error(OPTION, text, "PATH is empty")
    try:
        root = Path(path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise _rules.error(OPTION, text, f"PATH {path!r} cannot be used: {getattr(e, 'strerror', None) or e}") from None
    return Mapping(rule, regex, root)


def url_suffix(mapping: Mapping, url: str) -> str | None:
    """The part of `url` a directory mapping looks up: the first group, else what follows the match."""
    m = mapping.regex.search(url)
    if m is None:
        return None
    if m.re.groups:
        suffix = m.group(1) or ""
    else:
        suffix = url[m.end():]
    suffix = suffix.split("?", 1)[0].split("#", 1)[0]
    return urllib.parse.unquote(suffix)


def contained(root: Path, relative: str) -> Path | None:
    """`root / relative` if it stays inside `root` once `..` and symlinks are resolved, else None."""
    if "\0" in relative:
        return None
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None  # refused outright, even where it would land back inside
    try:
        candidate = root.joinpath(*parts).resolve()
    except (OSError, RuntimeError):  # e.g. a symlink loop
        return None
    if candidate != root and root not in candidate.parents:
        return None  # a symlink pointing out of PATH
    return candidate


def candidates(mapping: Mapping, url: str) -> list[Path] | None:
    """Files to try, in order; None when the URL tries to leave PATH."""
    if mapping.root.is_file():
        return [mapping.root]
    suffix = url_suffix(mapping, url) or ""
    target = contained(mapping.root, suffix)
    if target is None:
        return None
    index = contained(target, "index.html")
    return [target] + ([index] if index is not None else [])


def file_response(path: Path) -> Response | None:
    try:
        body = path.read_bytes()
    except OSError as e:
        ctx.log.warn(f"map_local: cannot read {path}: {e.strerror or e}")
        return None
    headers = {}
    ctype, encoding = mimetypes.guess_type(path.name)
    if encoding:  # e.g. page.html.gz: sent as it is, so it is not HTML on the wire
        ctype = "application/octet-stream"
    if ctype:
        headers["content-type"] = ctype
    return Response.make(200, body, headers)


class MapLocal:
    def __init__(self) -> None:
        self.mappings: list[Mapping] = []
        self.early = 0
        """How many of `mappings` act at `requestheaders` (the rest at `request`)."""

    def load(self, loader: Any) -> None:
        loader.add_option(
            OPTION, Sequence[str], [],
            "Answer requests from local files: |URL_REGEX|PATH or |FILTER|URL_REGEX|PATH (any first character "
            "is the separator). A directory PATH serves the URL path after the match; 404 if no file. "
            "One rule per --set.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            mappings = [parse_rule(text) for text in options.map_local]
            self.mappings, self.early = mappings, _rules.headers_stage_count([m.rule for m in mappings])

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._map(flow, self.mappings[: self.early])

    def request(self, flow: HTTPFlow) -> None:
        self._map(flow, self.mappings[self.early :])

    def _map(self, flow: HTTPFlow, mappings: list[Mapping]) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        url = flow.request.pretty_url
        tried: list[str] = []
        for mapping in mappings:
            if not mapping.regex.search(url) or not mapping.rule.matches(flow):
                continue
            paths = candidates(mapping, url)
            if paths is None:
                tried.append(f"{url_suffix(mapping, url)!r} leaves {mapping.root}")
                continue
            for path in paths:
                if path.is_file() and (resp := file_response(path)) is not None:
                    flow.response = resp
                    flow.metadata["map_local"] = str(path)
                    return
            tried.extend(str(p) for p in paths)
        if tried:
            ctx.log.info(f"map_local: 404 for {url}: no file among {', '.join(tried)}")
            flow.response = Response.make(404)


addons = [MapLocal()]
