"""The terminal UI (urwid). It sees the core only through `Master` and the event bus."""
