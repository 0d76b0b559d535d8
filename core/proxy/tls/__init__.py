"""TLS for the engine: the interception CA and its leaf certificates, ClientHello peeking, TLS over streams."""
