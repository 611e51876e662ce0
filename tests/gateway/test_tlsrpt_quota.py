"""Per-source TLS-RPT quota (issue 12.11): windows, the bounded table, the source address."""

from __future__ import annotations

from mxgate_gateway.mtasts.quota import SourceQuota, source_of

LIMITS = {"max_reports": 2, "max_sessions": 100, "interval": 60.0}


def test_window_resets_after_the_interval() -> None:
    now = [0.0]
    quota = SourceQuota(clock=lambda: now[0])
    assert quota.admit("a", 10, **LIMITS)
    assert quota.admit("a", 10, **LIMITS)
    assert not quota.admit("a", 10, **LIMITS)
    assert quota.admit("b", 10, **LIMITS)  # other sources are not affected
    now[0] = 61.0
    assert quota.admit("a", 10, **LIMITS)


def test_a_full_table_caps_newcomers_together_never_uncapped() -> None:
    quota = SourceQuota(max_sources=3, clock=lambda: 0.0)
    admitted = sum(quota.admit(f"10.0.0.{i}", 1, **LIMITS) for i in range(100))
    assert admitted == 3 + 2  # three tracked sources, then one shared window of two reports


def test_source_is_the_peer_unless_it_is_a_trusted_proxy() -> None:
    trusted = ("10.0.0.0/8",)
    assert source_of("192.0.2.1", "198.51.100.7", trusted) == "192.0.2.1"
    assert source_of("10.1.2.3", "198.51.100.7", trusted) == "198.51.100.7"
    assert source_of("10.1.2.3", "198.51.100.7, 10.9.9.9", trusted) == "198.51.100.7"
    assert source_of("10.1.2.3", "forged, 198.51.100.7", trusted) == "198.51.100.7"
    assert source_of("10.1.2.3", None, trusted) == "10.1.2.3"
    assert source_of("10.1.2.3", "198.51.100.7", ()) == "10.1.2.3"
