"""Pure rendering: parsed TLSPolicies → gateway policy file, ConfigMap, Certificates, status.

Nothing in this sub-package performs I/O, logs, or imports kopf/lightkube/asyncio;
every function returns a value (frozen dataclass or plain manifest dict).
"""

from __future__ import annotations
