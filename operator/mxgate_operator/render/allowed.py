"""What a TLSPolicy may ask cert-manager for: the chart's allowed issuers, names, durations.

A policy author with rights on TLSPolicies only must not obtain certificates they could
not request themselves (issue 18 item 3). Pure: takes a parsed CertificateSpec and the
operator's settings, returns why it is refused (or None); it must not talk to the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxgate_operator.spec import DEFAULT_DURATION, CertificateSpec, go_duration_seconds

CERT_MANAGER_GROUP = "cert-manager.io"


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in text.split(",") if p.strip())


def name_allowed(name: str, patterns: tuple[str, ...]) -> bool:
    """``name`` equals a pattern, or a ``*.suffix`` pattern covers exactly one more label."""
    name = name.lower()
    for pattern in patterns:
        if pattern.startswith("*."):
            head, _, rest = name.partition(".")
            if head and rest == pattern[2:]:
                return True
        elif name == pattern:
            return True
    return False


@dataclass(frozen=True)
class CertificateRules:
    """The chart's declaration; an empty tuple means that dimension is not restricted.

    issuers: ``Kind/name`` entries (``ClusterIssuer/letsencrypt``, ``Issuer/*`` for any
        Issuer in the namespace); when set, ``issuerRef.group`` must be cert-manager.io.
    dns_names: exact names or ``*.suffix`` patterns (the gateway's hostnames).
    min_duration: seconds a requested ``duration`` must at least last (ACME rate limits).
    """

    issuers: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    min_duration: int = 0

    @classmethod
    def parse(cls, issuers: str, dns_names: str, min_duration: str) -> CertificateRules:
        return cls(
            issuers=_split(issuers),
            dns_names=_split(dns_names),
            min_duration=go_duration_seconds(min_duration) if min_duration else 0,
        )

    def refusal(self, cert: CertificateSpec) -> str | None:
        """Why this request is not allowed, or None when it is."""
        ref = cert.issuer_ref
        if self.issuers:
            wanted = {f"{ref.kind}/{ref.name}".lower(), f"{ref.kind}/*".lower()}
            if ref.group != CERT_MANAGER_GROUP or not wanted & set(self.issuers):
                return (
                    f"issuerRef {ref.group}/{ref.kind}/{ref.name} is not one the chart allows"
                    f" (operator.certificates.allowedIssuers: {', '.join(self.issuers)})"
                )
        if self.dns_names:
            bad = [n for n in cert.dns_names if not name_allowed(n, self.dns_names)]
            if bad:
                return (
                    f"dnsNames {', '.join(bad)} are not the gateway's names"
                    f" (operator.certificates.allowedDNSNames: {', '.join(self.dns_names)})"
                )
        duration = go_duration_seconds(cert.duration or DEFAULT_DURATION)
        if duration < self.min_duration:
            return (
                f"duration {cert.duration} is shorter than the chart's minimum"
                f" ({_span(self.min_duration)}, operator.certificates.minDuration)"
            )
        # renewBefore close to duration re-issues as often as a short duration would: no
        # request may renew more often than a default one of the minimum duration does.
        if cert.renew_before is None:
            return None
        interval = duration - go_duration_seconds(cert.renew_before)
        floor = self.min_duration * 2 // 3
        if interval < floor:
            return (
                f"renewBefore {cert.renew_before} re-issues every {_span(interval)}; the chart"
                f" allows at most one issuance per {_span(floor)} (⅔ of"
                f" operator.certificates.minDuration {_span(self.min_duration)},"
                " cert-manager's default renewal point)"
            )
        return None


def _span(seconds: int) -> str:
    """``16h``, ``90m`` or ``45s``: the largest unit that divides ``seconds``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class MTASTSRules:
    """What a TLSPolicy may publish MTA-STS for (issue 18 item 5); empty: not restricted.

    domains: the gateway's own ``domains`` (only those may get a policy).
    mx_names: the gateway's host names and the chart's allowed certificate names; every
        ``mtaSts.mx`` entry must be one of them (or covered by a ``*.suffix`` entry).
    """

    domains: tuple[str, ...] = ()
    mx_names: tuple[str, ...] = ()

    def refusal(self, published: tuple[str, ...], mx: tuple[str, ...]) -> str | None:
        """Why publishing MTA-STS for ``published`` with ``mx`` is not allowed, or None."""
        if self.domains:
            foreign = [d for d in published if d.lower().rstrip(".") not in self.domains]
            if foreign:
                return (
                    f"MTA-STS for {', '.join(foreign)}: not one of the gateway's domains"
                    f" ({', '.join(self.domains)})"
                )
        if self.mx_names:
            bad = [
                m
                for m in mx
                if m.lower() not in self.mx_names
                and (m.startswith("*.") or not name_allowed(m, self.mx_names))
            ]
            if bad:
                return (
                    f"mtaSts.mx {', '.join(bad)} is not a name of this gateway"
                    f" ({', '.join(self.mx_names)}); senders would refuse the real MX"
                )
        return None
