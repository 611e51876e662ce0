"""HTTP side: health, metrics and report endpoints (aiohttp)."""
