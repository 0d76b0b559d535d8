"""The addon runtime: `Master` (the life cycle), `entry` (the one thread-safe way in, and the core's own
thread), the addon manager, hooks, the bus, options, scripts and logs (docs/architecture.md)."""
