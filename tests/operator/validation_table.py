"""ONE table of good and bad TLSPolicies: the Python validator and the API server must agree.

Each bad case makes exactly one mistake and names the field path and a message
fragment that both the server's error and `mxgate_operator.spec` must contain.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

CERT = {
    "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
    "dnsNames": ["mx1.example.com"],
}
BASE: dict[str, Any] = {"mode": "audit", "scope": {"senderDomains": ["bank.example"]}}
MTA_SCOPE = {"recipientDomains": ["example.com"]}
MTA = {"mode": "enforce", "mx": ["mx1.example.com"]}


@dataclass(frozen=True)
class Case:
    id: str
    spec: Any
    path: str | None = None  # None: the policy is valid
    fragment: str = ""
    name: str = "t"

    def manifest(self, name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "mxgate.io/v1alpha1",
            "kind": "TLSPolicy",
            "metadata": {"name": name or self.name},
        }
        if self.spec is not None:
            body["spec"] = copy.deepcopy(self.spec)
        return body


def spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        out[key] = value
    return out


GOOD = [
    Case("minimal-audit", spec()),
    Case(
        "opportunistic-cidrs",
        spec(mode="opportunistic", scope={"clientCIDRs": ["10.0.0.0/8", "2001:db8::/32"]}),
    ),
    Case(  # every address, upper-case hex and IPv6 prefixes that embed IPv4 but are not mapped
        "cidr-edges",
        spec(
            mode="opportunistic",
            scope={"clientCIDRs": ["0.0.0.0/0", "::/0", "2001:DB8::/32", "64:ff9b::a00:0/120"]},
        ),
    ),
    Case("require-with-cert", spec(mode="require", listener="internal", certificate=CERT)),
    Case("wildcard-recipient", spec(scope={"recipientDomains": ["*.example.org", "example.org"]})),
    Case(
        "full-cert",
        spec(
            mode="require",
            certificate={
                **CERT,
                "privateKey": {"algorithm": "RSA", "size": 3072},
                "duration": "2160h",
                "renewBefore": "360h",
            },
        ),
    ),
    Case("ed25519", spec(certificate={**CERT, "privateKey": {"algorithm": "Ed25519"}})),
    Case("priority-bounds", spec(priority=-1000000, minTLSVersion="1.3", refusal="temporary")),
    Case(
        "mta-sts-testing",
        spec(
            scope={"recipientDomains": ["example.com", "*.example.com"]},
            mtaSts={"mode": "testing", "mx": ["mx1.example.com", "*.mx.example.com"]},
            tlsRpt={"rua": ["mailto:x@example.com", "https://tlsrpt.example.com/tlsrpt"]},
        ),
    ),
    Case("mta-sts-none", spec(scope=MTA_SCOPE, mtaSts={"mode": "none"})),
    Case("mta-sts-max-age", spec(scope=MTA_SCOPE, mtaSts={**MTA, "maxAge": 31557600})),
    Case("tls-rpt-alone", spec(scope=MTA_SCOPE, tlsRpt={"rua": ["mailto:x@example.com"]})),
    Case("name-63", spec(), name="a" * 63),
    # Drift cases (issue 18 item 10): the server's rules, not Python's defaults.
    Case(  # RE2's \s is [\t\n\f\r ]: U+2028 is not white space to the server
        "rua-u2028",
        spec(scope=MTA_SCOPE, tlsRpt={"rua": ["mailto:a\u2028b@example.com"]}),
    ),
    Case(  # maxLength counts characters, not UTF-8 bytes: 512 characters, 1,000+ bytes
        "rua-512-characters",
        spec(scope=MTA_SCOPE, tlsRpt={"rua": ["mailto:" + "\u00e9" * 493 + "@example.com"]}),
    ),
]

BAD = [
    Case("no-spec", None, "spec", "Required value"),
    Case("mode-missing", {"scope": {"senderDomains": ["a.test"]}}, "spec.mode", "Required value"),
    Case("mode-unknown", spec(mode="sometimes"), "spec.mode", 'Unsupported value: "sometimes"'),
    Case("listener-unknown", spec(listener="smtp"), "spec.listener", "Unsupported value"),
    Case("tls-1.1", spec(minTLSVersion="1.1"), "spec.minTLSVersion", "Unsupported value"),
    Case("refusal-unknown", spec(refusal="soft"), "spec.refusal", "Unsupported value"),
    Case(
        "priority-too-high",
        spec(priority=1000001),
        "spec.priority",
        "less than or equal to 1000000",
    ),
    Case("priority-string", spec(priority="high"), "spec.priority", "must be of type integer"),
    Case("scope-missing", {"mode": "audit"}, "spec.scope", "Required value"),
    Case("scope-empty", spec(scope={}), "spec.scope", "scope needs at least one of"),
    Case(
        "scope-empty-lists",
        spec(scope={"senderDomains": [], "clientCIDRs": []}),
        "spec.scope",
        "scope needs at least one of",
    ),
    Case(
        "cidr-bad",
        spec(scope={"clientCIDRs": ["10.0.0.300/8"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # Python's ipaddress takes a netmask; CEL isCIDR does not
        "cidr-netmask",
        spec(scope={"clientCIDRs": ["10.0.0.0/255.0.0.0"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # Python's ipaddress takes a bare address as /32; CEL isCIDR does not
        "cidr-no-prefix",
        spec(scope={"clientCIDRs": ["10.0.0.0"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # a zone is no part of a prefix (Go netip.ParsePrefix)
        "cidr-zone",
        spec(scope={"clientCIDRs": ["fe80::%eth0/64"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # Python's ipaddress takes an IPv4-mapped IPv6 prefix; Kubernetes' cidr() does not
        "cidr-v4-mapped",
        spec(scope={"clientCIDRs": ["::ffff:10.0.0.0/104"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # the same prefix in hex: still IPv4-mapped
        "cidr-v4-mapped-hex",
        spec(scope={"clientCIDRs": ["::ffff:a00:0/104"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # leading zeros: octal to some parsers, refused by both
        "cidr-leading-zero",
        spec(scope={"clientCIDRs": ["010.0.0.0/8"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(  # Go refuses a zero-padded prefix length; Python's ipaddress reads /08 as /8
        "cidr-padded-length",
        spec(scope={"clientCIDRs": ["10.0.0.0/08"]}),
        "spec.scope.clientCIDRs[0]",
        "must be a CIDR network",
    ),
    Case(
        "cidr-host-bits",
        spec(scope={"clientCIDRs": ["10.0.0.1/8"]}),
        "spec.scope.clientCIDRs[0]",
        "no host bits set",
    ),
    Case(
        "cidr-too-long",
        spec(scope={"clientCIDRs": ["1" * 44]}),
        "spec.scope.clientCIDRs[0]",
        "Too long",
    ),
    Case(
        "domain-uppercase",
        spec(scope={"senderDomains": ["Bank.Example"]}),
        "spec.scope.senderDomains[0]",
        "should match",
    ),
    Case(
        "domain-trailing-dot",
        spec(scope={"recipientDomains": ["example.org."]}),
        "spec.scope.recipientDomains[0]",
        "should match",
    ),
    Case(
        "domain-duplicate",
        spec(scope={"senderDomains": ["a.test", "a.test"]}),
        "spec.scope.senderDomains[1]",
        "Duplicate value",
    ),
    Case(
        "too-many-domains",
        spec(scope={"senderDomains": [f"d{i}.test" for i in range(65)]}),
        "spec.scope.senderDomains",
        "must have at most 64 items",
    ),
    Case(
        "require-without-cert",
        spec(mode="require"),
        "spec",
        "mode 'require' needs spec.certificate",
    ),
    Case(
        "cert-no-dns",
        spec(certificate={"issuerRef": {"name": "x"}}),
        "spec.certificate.dnsNames",
        "Required value",
    ),
    Case(
        "cert-empty-dns",
        spec(certificate={**CERT, "dnsNames": []}),
        "spec.certificate.dnsNames",
        "should have at least 1 items",
    ),
    Case(  # issue 18 item 3: free-text group
        "cert-issuer-group",
        spec(certificate={**CERT, "issuerRef": {"name": "x", "group": "Cert Manager/io"}}),
        "spec.certificate.issuerRef.group",
        "should match",
    ),
    Case(
        "cert-issuer-kind",
        spec(certificate={**CERT, "issuerRef": {"name": "x", "kind": "Vault"}}),
        "spec.certificate.issuerRef.kind",
        "Unsupported value",
    ),
    Case(
        "cert-wildcard-host",
        spec(certificate={**CERT, "dnsNames": ["*.example.com"]}),
        "spec.certificate.dnsNames[0]",
        "should match",
    ),
    Case(
        "cert-duration-format",
        spec(certificate={**CERT, "duration": "90d"}),
        "spec.certificate.duration",
        "should match",
    ),
    Case(
        "cert-duration-short",
        spec(certificate={**CERT, "duration": "30m"}),
        "spec.certificate",
        "duration must be at least 1h",
    ),
    Case(
        "cert-renew-short",
        spec(certificate={**CERT, "renewBefore": "1m"}),
        "spec.certificate",
        "renewBefore must be at least 5m",
    ),
    Case(
        "cert-renew-too-long",
        spec(certificate={**CERT, "duration": "24h", "renewBefore": "24h"}),
        "spec.certificate",
        "renewBefore must be shorter than duration",
    ),
    Case(
        "cert-renew-vs-default",
        spec(certificate={**CERT, "renewBefore": "2200h"}),
        "spec.certificate",
        "renewBefore must be shorter than duration",
    ),
    Case(
        "rsa-size",
        spec(certificate={**CERT, "privateKey": {"algorithm": "RSA", "size": 1024}}),
        "spec.certificate.privateKey",
        "RSA key size",
    ),
    Case(
        "ecdsa-size",
        spec(certificate={**CERT, "privateKey": {"algorithm": "ECDSA", "size": 2048}}),
        "spec.certificate.privateKey",
        "ECDSA key size",
    ),
    Case(
        "ed25519-size",
        spec(certificate={**CERT, "privateKey": {"algorithm": "Ed25519", "size": 256}}),
        "spec.certificate.privateKey",
        "Ed25519 keys have no size",
    ),
    Case("name-64", spec(), "(root)", "metadata.name must be at most 63 characters", name="a" * 64),
    # spec.mtaSts / spec.tlsRpt (issue 8)
    Case(
        "mta-sts-no-mx",
        spec(scope=MTA_SCOPE, mtaSts={"mode": "enforce"}),
        "spec.mtaSts",
        "mtaSts.mx needs at least one pattern",
    ),
    Case(
        "mta-sts-mode",
        spec(scope=MTA_SCOPE, mtaSts={**MTA, "mode": "report"}),
        "spec.mtaSts.mode",
        "Unsupported value",
    ),
    Case(
        "mta-sts-no-mode",
        spec(scope=MTA_SCOPE, mtaSts={"mx": ["mx1.example.com"]}),
        "spec.mtaSts.mode",
        "Required value",
    ),
    Case(
        "mta-sts-max-age-low",
        spec(scope=MTA_SCOPE, mtaSts={**MTA, "maxAge": 3600}),
        "spec.mtaSts.maxAge",
        "greater than or equal to 86400",
    ),
    Case(
        "mta-sts-max-age-high",
        spec(scope=MTA_SCOPE, mtaSts={**MTA, "maxAge": 31557601}),
        "spec.mtaSts.maxAge",
        "less than or equal to 31557600",
    ),
    Case(
        "mta-sts-mx-pattern",
        spec(scope=MTA_SCOPE, mtaSts={**MTA, "mx": ["mx1.*.example.com"]}),
        "spec.mtaSts.mx[0]",
        "should match",
    ),
    Case(
        "mta-sts-no-recipient-domain",
        spec(mtaSts=MTA),
        "spec",
        "need a scope.recipientDomains entry without '*.'",
    ),
    Case(
        "mta-sts-only-wildcard-domain",
        spec(scope={"recipientDomains": ["*.example.com"]}, mtaSts=MTA),
        "spec",
        "need a scope.recipientDomains entry without '*.'",
    ),
    Case(
        "tls-rpt-http",
        spec(scope=MTA_SCOPE, tlsRpt={"rua": ["http://tlsrpt.example.com/"]}),
        "spec.tlsRpt.rua[0]",
        "should match",
    ),
    Case(
        "tls-rpt-comma",
        spec(scope=MTA_SCOPE, tlsRpt={"rua": ["mailto:a,b@example.com"]}),
        "spec.tlsRpt.rua[0]",
        "should match",
    ),
    Case(
        "tls-rpt-empty",
        spec(scope=MTA_SCOPE, tlsRpt={"rua": []}),
        "spec.tlsRpt.rua",
        "should have at least 1 items",
    ),
    Case("tls-rpt-no-rua", spec(scope=MTA_SCOPE, tlsRpt={}), "spec.tlsRpt.rua", "Required value"),
]
