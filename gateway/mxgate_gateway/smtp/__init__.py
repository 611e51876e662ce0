"""The SMTP protocol edge: aiosmtpd server, the per-verb handler, replies, Received header."""
