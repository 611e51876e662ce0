"""TLS material: server SSL contexts built from the configured certificate, and reload."""
