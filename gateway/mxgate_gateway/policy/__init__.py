"""Pure TLS policy: session facts + config snapshot → decision values.

Nothing here does I/O, logs, or imports asyncio, aiosmtpd or aiohttp.
"""
