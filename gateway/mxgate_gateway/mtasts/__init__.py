"""MTA-STS publishing (RFC 8461) and TLS-RPT intake (RFC 8460).

``policy`` (pure rendering of policy text, ids and DNS records; the operator may import it),
``tlsrpt`` (bounded, validating report parser), ``summary`` (bounded counters for
``/report``), ``metrics`` (prometheus), ``http`` (aiohttp routes). Never refuses mail.
"""
