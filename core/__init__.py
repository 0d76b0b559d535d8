"""interpose's proxy engine.

Addons import from here: `from interpose import ctx`, `from interpose.http import HTTPFlow, Request, Response, Headers`.
Nothing in core/ imports urwid.
"""
from interpose import ctx
from interpose.errors import InterposeError, OptionsError
from interpose.model.flow import Error, Flow

__all__ = ["ctx", "Error", "Flow", "InterposeError", "OptionsError"]
