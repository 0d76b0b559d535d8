"""interpose's proxy engine.

Addons import from here: `from core import ctx`, `from core.http import HTTPFlow, Request, Response, Headers`.
Nothing in core/ imports urwid.
"""
from core import ctx
from core.errors import InterposeError, OptionsError
from core.flow import Error, Flow

__all__ = ["ctx", "Error", "Flow", "InterposeError", "OptionsError"]
