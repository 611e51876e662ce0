"""The traffic generator plans exactly the mix it is asked for (the e2e test's ground truth)."""

from __future__ import annotations

import ssl
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)  # the repository's `bench` package; appended, never shadowing

from bench.traffic import REJECT_HEADER, Mix, build_message, client_context  # noqa: E402


@pytest.mark.parametrize(
    ("mix", "per_class", "domains", "networks", "rejects"),
    [
        (Mix(), {"TLSv1.3": 30, "TLSv1.2": 20, "none": 10}, 5, 3,
         {"TLSv1.3": 8, "TLSv1.2": 5, "none": 3}),
        (Mix(tls13=1, tls12=0, plaintext=7, sender_domains=10, client_networks=1, reject_every=0),
         {"TLSv1.3": 1, "none": 7}, 10, 1, {}),
        (Mix(tls13=0, tls12=0, plaintext=30, sender_domains=6, skew=True, reject_every=1),
         {"none": 30}, 6, 3, {"none": 30}),
    ],
)  # fmt: skip
def test_planned_mix(
    mix: Mix, per_class: dict[str, int], domains: int, networks: int, rejects: dict[str, int]
) -> None:
    """Counts per TLS class, distinct sender domains and /24s per class, and marked messages."""
    planned = mix.messages()
    assert Counter(p.tls for p in planned) == per_class
    for cls, count in per_class.items():
        mine = [p for p in planned if p.tls == cls]
        assert len({p.sender.rsplit("@", 1)[1] for p in mine}) == min(domains, count)
        assert len({p.client_ip.rsplit(".", 1)[0] for p in mine}) == min(networks, count)
        assert all(p.client_ip.startswith("127.") for p in mine)
    assert Counter(p.tls for p in planned if p.reject) == rejects


def test_skew_gives_a_head_and_a_tail() -> None:
    """With --skew the first sender domain sends most, the last the least (a top list to read)."""
    planned = Mix(tls13=0, tls12=0, plaintext=30, sender_domains=6, skew=True).messages()
    counts = Counter(p.sender.rsplit("@", 1)[1] for p in planned)
    ordered = [counts[f"plain-{k}.traffic.test"] for k in range(6)]
    assert ordered == sorted(ordered, reverse=True)
    assert ordered[0] > 2 * ordered[-1]


@pytest.mark.parametrize(
    ("tls", "version"), [("TLSv1.3", ssl.TLSVersion.TLSv1_3), ("TLSv1.2", ssl.TLSVersion.TLSv1_2)]
)
def test_client_context_pins_one_version(tls: str, version: ssl.TLSVersion) -> None:
    """A TLS 1.2 sender can only speak 1.2 and a TLS 1.3 sender only 1.3."""
    ctx = client_context(tls)
    assert ctx.minimum_version == ctx.maximum_version == version


def test_only_marked_messages_carry_the_reject_header() -> None:
    """The upstream refuses by a header the generator adds only where planned."""
    marked, plain = Mix(reject_every=2).messages()[:2]
    assert f"{REJECT_HEADER}: reject".encode() in build_message(marked, "u@accepted.test", 0)
    assert REJECT_HEADER.encode() not in build_message(plain, "u@accepted.test", 1)
