"""What flows become on disk or on screen without urwid: the TUI's flow list (`view`), body spilling, flow
files, HAR and export. Imports the model, the public API and `runtime.options` (docs/architecture.md)."""
