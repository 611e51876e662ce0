"""In-line relay to the internal MTAs: outcomes as values, upstream routing, the client."""
