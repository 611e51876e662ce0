"""A private, real Exim 4 as a *sending* MTA: own config, spool and log; no daemon.

The binary comes from Debian's exim4-daemon-light, unpacked (never installed: it
conflicts with Postfix) by scripts/install-mta-senders.sh under ~/.cache/mxgate/mta.
``send`` submits one message on stdin with ``-odf`` (deliver in the foreground): Exim's
own smtp transport then talks to the gateway exactly as on the internet, pipelining
QUIT after the final dot and shutting its write side.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("MXGATE_MTA_CACHE", Path.home() / ".cache/mxgate/mta"))
BINARY = CACHE / "exim/usr/sbin/exim4"
USER = "Debian-exim"  # Exim's compiled-in user: it delivers as this user, never as root

# Exim transport options per TLS mode of the sending side.
TLS_MODES = {
    "off": "hosts_avoid_tls = *",
    "opportunistic": "",  # Exim's default: STARTTLS when offered, clear text if it fails
    "required": "hosts_require_tls = *\n  tls_verify_hosts = *\n"
    "  tls_verify_certificates = {ca}\n  tls_verify_cert_hostnames =",
}


def available() -> bool:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return BINARY.exists() and os.geteuid() == 0


class Exim:
    """One Exim instance routing every recipient to ``127.0.0.1:port`` (the gateway)."""

    def __init__(self, port: int, tls: str, ca: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"mxgate-exim-{tls}-"))
        self.root.chmod(0o755)  # Exim re-executes itself as Debian-exim: it must reach us
        self.binary = self.root / "bin/exim4"
        self.binary.parent.mkdir()
        shutil.copy2(BINARY, self.binary)  # ~/.cache may be unreadable to Debian-exim
        for sub in ("spool", "log"):
            (self.root / sub).mkdir()
            shutil.chown(self.root / sub, USER, USER)
        shutil.copy2(ca, self.root / "ca.pem")  # readable by Debian-exim
        options = TLS_MODES[tls].format(ca=self.root / "ca.pem")
        (self.root / "exim.conf").write_text(
            f"""exim_path = {self.binary}
spool_directory = {self.root}/spool
log_file_path = {self.root}/log/%slog
primary_hostname = exim.test
qualify_domain = exim.test
keep_environment =
tls_advertise_hosts =
begin routers
to_gateway:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = to_gateway
begin transports
to_gateway:
  driver = smtp
  port = {port}
  allow_localhost
  helo_data = exim.test
  {options}
begin retry
* * F,1h,1m
"""
        )

    def send(
        self, sender: str, recipient: str, message: bytes
    ) -> subprocess.CompletedProcess[bytes]:
        """Submit on stdin and deliver in the foreground (returns when Exim is done)."""
        return subprocess.run(
            [str(self.binary), "-C", str(self.root / "exim.conf"), "-odf", "-f", sender, recipient],
            input=message,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )

    def log(self) -> str:
        path = self.root / "log/mainlog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
