"""The flow model's parts: flows, connections, messages, headers, bodies, encodings, cookies, sizes and the
filter operators. Imports only the standard library, `interpose.errors` and itself (docs/architecture.md)."""
