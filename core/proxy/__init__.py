"""The proxy engine: the listener, the protocol layers (one `TABLE` of kinds in `layer`), TLS, modes,
upstream connections and proxy authentication. Imports the model, the public API and the runtime's
contracts (hooks, bus, options) only (docs/architecture.md)."""
