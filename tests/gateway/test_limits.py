"""Connection admission: total and per-client limits, counted per IPv4 address or IPv6 /64."""

from __future__ import annotations

import pytest

from mxgate_gateway.smtp.limits import Admission, ConnectionLimiter, client_key


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/mxgate.sock", "/run/mxgate.sock"),
    ],
)
def test_clients_are_counted_per_address_or_ipv6_prefix(ip: str, key: str) -> None:
    """An IPv6 host owns its /64, so the whole prefix shares one per-client budget."""
    assert client_key(ip) == key


def test_per_ip_limit_refuses_the_extra_connection_from_that_address_only() -> None:
    """The third connection from one address is refused while others still get in."""
    limiter = ConnectionLimiter(max_total=10, max_per_ip=2)
    assert limiter.admit("192.0.2.1")[0] is Admission.ADMITTED
    assert limiter.admit("192.0.2.1")[0] is Admission.ADMITTED
    verdict, lease = limiter.admit("192.0.2.1")
    assert (verdict, lease) == (Admission.PER_IP_LIMIT, None)
    assert verdict.reply is not None
    assert verdict.reply.startswith("421 4.7.0 ")
    assert limiter.admit("192.0.2.2")[0] is Admission.ADMITTED
    assert limiter.total == 3


def test_total_limit_refuses_everyone_until_a_connection_closes() -> None:
    """At the total limit any new client gets 421 4.7.0; a release makes room again."""
    limiter = ConnectionLimiter(max_total=2, max_per_ip=5)
    _, first = limiter.admit("192.0.2.1")
    limiter.admit("192.0.2.2")
    verdict, _ = limiter.admit("192.0.2.3")
    assert verdict is Admission.TOTAL_LIMIT
    assert verdict.reply is not None
    assert verdict.reply.startswith("421 4.7.0 ")
    assert first is not None
    limiter.release(first)
    assert limiter.admit("192.0.2.3")[0] is Admission.ADMITTED


def test_release_twice_is_a_bug_not_a_silent_miscount() -> None:
    """Releasing a lease twice raises instead of letting the count go negative."""
    limiter = ConnectionLimiter(max_total=2, max_per_ip=2)
    _, lease = limiter.admit("192.0.2.1")
    assert lease is not None
    limiter.release(lease)
    with pytest.raises(ValueError, match="released twice"):
        limiter.release(lease)
    assert limiter.total == 0


def test_balancer_connections_are_recounted_under_the_real_client() -> None:
    """A trusted balancer skips the per-IP check; after PROXY the real client is limited."""
    limiter = ConnectionLimiter(max_total=100, max_per_ip=1)
    leases = [limiter.admit("10.0.0.1", per_ip=False)[1] for _ in range(3)]
    assert None not in leases
    a, b = leases[0], leases[1]
    assert a is not None
    assert b is not None
    assert limiter.rekey(a, "203.0.113.7")[0] is Admission.ADMITTED
    second = limiter.rekey(b, "203.0.113.7")
    assert second == (Admission.PER_IP_LIMIT, None)
    assert limiter.count("10.0.0.1") == 1
    assert limiter.count("203.0.113.7") == 1
    assert limiter.total == 2


def test_lowered_limits_apply_to_new_connections_only() -> None:
    """A reload that lowers the limit cuts no open connection but refuses new ones."""
    limiter = ConnectionLimiter(max_total=10, max_per_ip=10)
    for _ in range(3):
        limiter.admit("192.0.2.1")
    limiter.set_limits(max_total=2, max_per_ip=10)
    assert limiter.total == 3
    assert limiter.admit("192.0.2.9")[0] is Admission.TOTAL_LIMIT
