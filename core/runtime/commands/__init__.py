"""Commands: the registry (registry.py), argument types (types.py), the command-line lexer (lexer.py), the
core's own commands (builtin.py) and options as YAML (config.py)."""
from __future__ import annotations

from interpose.runtime.commands.lexer import CommandError
from interpose.runtime.commands.registry import Command, CommandRegistry

__all__ = ["Command", "CommandError", "CommandRegistry"]
