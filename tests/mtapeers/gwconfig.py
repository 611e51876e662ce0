"""Test gateway configs and the private Postfix upstream's settings, as plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mxgate_gateway.config.model import Config

# main.cf settings of the session's upstream Postfix: known users, a 450 at RCPT for
# tempfail@, and 4xx/5xx at the final dot for two magic senders.
UPSTREAM_SETTINGS = {
    "virtual_mailbox_domains": "accepted.test",
    "virtual_mailbox_maps": "inline:{ {alice@accepted.test=alice/}, {bob@accepted.test=bob/},"
    " {big@accepted.test=big/}, {tempfail@accepted.test=tempfail/} }",
    "smtpd_recipient_restrictions": "check_recipient_access inline:{"
    " {tempfail@accepted.test=450 4.2.0 Mailbox busy, try later} },"
    " permit_mynetworks, reject_unauth_destination",
    "smtpd_end_of_data_restrictions": "check_sender_access inline:{"
    " {eodtemp@sender.test=451 4.3.0 Try again at end of data},"
    " {eodreject@sender.test=554 5.7.1 Refused at end of data} }",
    "smtpd_tls_security_level": "may",
    "smtpd_tls_received_header": "yes",
}


def gateway_config(upstream_port: int, tls_files: dict[str, Path] | None, **over: Any) -> Config:
    """A test gateway config on port 0 for accepted.test; ``over`` replaces top-level keys."""
    data: dict[str, Any] = {
        "hostname": "mx.test",
        "listen": {"smtp": "127.0.0.1:0", "http": "127.0.0.1:0"},
        "domains": ["accepted.test"],
        "upstreams": [{"address": f"127.0.0.1:{upstream_port}", "timeout": 10}],
        "limits": {"max_message_size": 8 * 1024 * 1024, "drain_timeout": 0},
    }
    if tls_files is not None:
        data["tls"] = {"cert": str(tls_files["cert"]), "key": str(tls_files["key"])}
    data.update(over)
    return Config.model_validate(data)
