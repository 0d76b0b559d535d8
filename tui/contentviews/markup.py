"""Forgiving pretty-printers for markup and code: HTML/XML re-indentation, JS/CSS line breaking.

Nothing here parses strictly: broken HTML, unclosed tags and stray `<` are normal proxy traffic,
so the re-indenter works on a flat list of tag/text tokens and never fails on odd input.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pygments.token import (
    Comment,
    Name,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

INDENT = "  "
INLINE_MAX = 100  # <tag>text</tag> stays on one line when it is at most this long

_TOKEN_RE = re.compile(
    r"(?P<comment><!--.*?(?:-->|\Z))"
    r"|(?P<cdata><!\[CDATA\[.*?(?:\]\]>|\Z))"
    r"|(?P<decl><![^>]*>?)"
    r"|(?P<pi><\?.*?(?:\?>|\Z))"
    # Quoted values may hold ">" but no "<", so a tag that never closes fails fast (no quadratic scans).
    r"|(?P<tag></?[A-Za-z_][^\s/<>]*(?:\"[^\"<]*\"|'[^'<]*'|[^'\"<>])*>)",
    re.DOTALL,
)
_NAME_RE = re.compile(r"</?([^\s/>]+)")
VOID = frozenset(["area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
                  "source", "track", "wbr"])
RAW_TEXT = frozenset(("script", "style", "pre", "textarea"))
# Opening the key while the innermost open element is one of the values closes that element first.
_IMPLIED_END = {"li": {"li"}, "p": {"p"}, "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "tr": {"tr", "td", "th"},
                "td": {"td", "th"}, "th": {"td", "th"}, "option": {"option"}, "thead": {"tbody", "tfoot"},
                "tbody": {"thead", "tbody", "tfoot"}, "tfoot": {"thead", "tbody"}}
Tok = tuple[str, str, str]  # (kind, text, folded tag name or "")


def _tokens(text: str, html: bool) -> list[Tok]:
    """Kinds: comment, cdata, decl, pi, open, close, text, and raw (script/style/pre body, HTML only)."""
    out: list[Tok] = []
    pos = 0
    while (m := _TOKEN_RE.search(text, pos)) is not None:
        if m.start() > pos:
            out.append(("text", text[pos:m.start()], ""))
        kind, tok, name = m.lastgroup or "text", m.group(), ""
        pos = m.end()
        if kind == "tag":
            nm = _NAME_RE.match(tok)
            name = nm.group(1) if nm else ""
            name = name.lower() if html else name
            kind = "close" if tok.startswith("</") else "open"
        out.append((kind, tok, name))
        if html and kind == "open" and name in RAW_TEXT and not tok.endswith("/>"):
            em = re.compile(rf"</{re.escape(name)}\s*>", re.IGNORECASE).search(text, pos)
            end = em.start() if em else len(text)
            if end > pos:
                out.append(("raw", text[pos:end], ""))
            pos = end
    if pos < len(text):
        out.append(("text", text[pos:], ""))
    return out


def reindent_markup(text: str, html: bool = True) -> str:
    """Put each tag on its own line, indented by nesting depth; keep script/style/pre content as is."""
    out: list[str] = []
    stack: list[str] = []
    toks = _tokens(text, html)
    i, n = 0, len(toks)

    def put(s: str) -> None:
        out.append(INDENT * len(stack) + s)

    while i < n:
        kind, tok, name = toks[i]
        i += 1
        if kind == "text":
            for line in tok.split("\n"):
                if line.strip():
                    put(line.strip())
        elif kind == "raw":
            body = tok.strip("\n")
            out.extend(ln.rstrip() for ln in body.split("\n") if body.strip())
        elif kind == "close":
            if name in stack:
                while stack.pop() != name:
                    pass
            put(tok)
        elif kind != "open":  # comment, cdata, declaration, processing instruction: verbatim
            lines = tok.split("\n")
            put(lines[0].rstrip())
            out.extend(ln.rstrip() for ln in lines[1:])
        else:
            if html and stack and stack[-1] in _IMPLIED_END.get(name, ()):
                stack.pop()
            if tok.endswith("/>") or (html and name in VOID):
                put(tok)
                continue
            # <tag></tag> and <tag>short text</tag> stay on one line.
            if i < n and toks[i][0] == "close" and toks[i][2] == name:
                put(tok + toks[i][1])
                i += 1
                continue
            if i + 1 < n and toks[i][0] in ("text", "raw") and toks[i + 1][0] == "close" and toks[i + 1][2] == name:
                inner = toks[i][1].strip()
                if "\n" not in inner and len(tok) + len(inner) <= INLINE_MAX:
                    put(tok + inner + toks[i + 1][1])
                    i += 2
                    continue
            put(tok)
            stack.append(name)
    return "\n".join(out) + "\n"


def markup_tokens_fast(pretty: str) -> Iterator[tuple[_TokenType, str]]:
    """Coarse highlighting for markup too large for pygments: tag lines, comment lines, text."""
    for line in pretty.split("\n"):
        head = line.lstrip()
        kind = Comment if head.startswith(("<!--", "<!", "<?")) else Name.Tag if head.startswith("<") else Text
        yield kind, line + "\n"


# --- JavaScript / CSS -------------------------------------------------------------------------

_FAST_CODE_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<comment>/\*.*?(?:\*/|\Z)|//[^\n]*)"
    r"|(?P<string>\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?|`(?:[^`\\]|\\.)*`?)"
    r"|(?P<punct>[{}();,])"
    r"|(?P<other>[^\s\"'`/{}();,]+|/)",
    re.DOTALL,
)
_FAST_TYPES = {"ws": Whitespace, "comment": Comment, "string": String, "punct": Punctuation, "other": Text}


def code_tokens_fast(text: str) -> Iterator[tuple[_TokenType, str]]:
    """A coarse JS/CSS tokenizer (strings, comments, punctuation) for bodies too large for pygments.

    About ten times faster than pygments' JavascriptLexer; regex literals are not recognised, which
    at worst misplaces a line break or a string colour.
    """
    types = _FAST_TYPES
    for m in _FAST_CODE_RE.finditer(text):
        yield types[m.lastgroup or "other"], m.group()


BEAUTIFY_MIN_LINE = 300  # only code with a line this long is considered minified
_CONTINUES = {"else", "catch", "finally", "while"}  # `} else {` stays on one line


def needs_beautify(text: str) -> bool:
    """True for minified code: some line is very long."""
    return any(len(line) >= BEAUTIFY_MIN_LINE for line in text.split("\n"))


def beautify_tokens(tokens: Iterable[tuple[_TokenType, str]]) -> Iterator[tuple[_TokenType, str]]:
    """Insert line breaks after `{`, `;` and around `}` (outside parentheses), indenting by brace depth.

    Works on a token stream, so strings, comments, regex literals and templates are never touched.
    Original line breaks are kept (and re-indented).
    """
    depth = paren = 0
    at_start = True  # nothing but indentation on the current output line yet
    pending = False  # a line break is owed before the next visible token
    opened = False  # the last visible token was "{", so "}" makes an empty block "{}"
    after_close = False  # the owed break follows "}": `}, ` `});` `} else` stay on the line
    is_punct: dict[_TokenType, bool] = {}  # pygments' `in` on token types is slow; ask once per type

    for ttype, value in tokens:
        punct = is_punct.get(ttype)
        if punct is None:
            punct = is_punct[ttype] = ttype in Punctuation or ttype in Operator
        if not punct:
            if not value:
                continue
            if value.isspace():
                if "\n" in value:
                    at_start, pending = True, False
                    yield Text, "\n" + INDENT * depth
                elif not at_start and not pending:
                    yield ttype, value
                continue
            if pending:
                if after_close and value in _CONTINUES:
                    yield Whitespace, " "
                else:
                    yield Text, "\n" + INDENT * depth
                    at_start = True
                pending = after_close = False
            yield ttype, value
            at_start = opened = False
            continue
        # Some lexers group runs like ");" into one token; the braces among them matter one by one.
        for ch in (value if len(value) > 1 and any(c in value for c in "{};()") else (value,)):
            if ch == "}":
                depth = max(0, depth - 1)
                if not at_start and not opened:
                    yield Text, "\n" + INDENT * depth
                yield ttype, ch
                at_start, pending, opened, after_close = False, True, False, True
                continue
            if pending:
                if not (after_close and ch in ",;)]"):
                    yield Text, "\n" + INDENT * depth
                pending = after_close = False
            yield ttype, ch
            at_start = opened = False
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(0, paren - 1)
            elif ch == "{":
                depth += 1
                pending = opened = True
            elif ch == ";" and paren == 0:
                pending = True
