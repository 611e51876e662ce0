"""Reading a running gateway's state from the outside: metric values, waiting for them.

Tests assert on what an operator sees (the /metrics exposition), polled until it
settles, never on sleeps. It must not change the gateway it observes.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from eventually import eventually_async
from mxgate_gateway.app import Gateway


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    """The value of one sample (0.0 when the series does not exist)."""
    text = gateway.metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def settled(gateway: Gateway, timeout: float = 10.0) -> None:
    """Every connection ended: the gauge and the admission counts are back to 0."""
    limiter = gateway.handler.gatekeeper.limiter

    def idle() -> bool:
        return metric(gateway, "mxgate_connections") == 0 and limiter.total == 0

    await eventually_async(
        idle, timeout, lambda: f"connections gauge 0 (limiter total {limiter.total})"
    )
