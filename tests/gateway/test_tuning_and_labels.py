"""Process tuning is read once in settings.py; negotiated TLS has one label function."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from mxgate_gateway.config.model import Listener
from mxgate_gateway.metrics import TLS_LABELS
from mxgate_gateway.negotiated import NegotiatedTLS, tls_label
from mxgate_gateway.policy.facts import SessionFacts, trace_header_value
from mxgate_gateway.settings import Tuning


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Tuning(uvloop=True, upstream_pool=True)),
        ({"MXGATE_UVLOOP": "0"}, Tuning(uvloop=False, upstream_pool=True)),
        ({"MXGATE_UPSTREAM_POOL": "no"}, Tuning(uvloop=True, upstream_pool=False)),
        ({"MXGATE_UVLOOP": "1", "MXGATE_UPSTREAM_POOL": "Off"}, Tuning(True, False)),
    ],
)
def test_uvloop_and_the_upstream_pool_are_on_unless_turned_off(
    env: dict[str, str], expected: Tuning
) -> None:
    assert Tuning.from_env(env) == expected


@pytest.mark.parametrize(
    ("version", "label"),
    [
        (None, "none"),
        ("TLSv1.3", "TLSv1.3"),
        ("TLSv1.2", "TLSv1.2"),
        ("TLSv1.1", "TLSv1.1"),
        ("TLSv1", "TLSv1"),
        ("SSLv3", "other"),
        ("none", "other"),  # a version string is never mistaken for plaintext
        ("", "other"),
    ],
)
def test_every_consumer_labels_a_tls_version_the_same_way(version: str | None, label: str) -> None:
    """Metrics, the loss report and the trace header share NegotiatedTLS (they disagreed)."""
    assert tls_label(version) == label
    assert NegotiatedTLS.of(version).value == label
    facts = SessionFacts(ip_address("192.0.2.1"), version, Listener.PUBLIC_MX)
    assert trace_header_value(facts) == label
    assert set(TLS_LABELS) <= {t.value for t in NegotiatedTLS}
