"""A private, real OpenSMTPD as a *sending* MTA: own config, spool and control socket.

The binary comes from Debian's opensmtpd, unpacked (never installed: it conflicts with
Postfix) by scripts/install-mta-senders.sh. Its spool, chroot and control socket paths
are compiled in (/var/spool/smtpd, /var/lib/opensmtpd/empty, /run/smtpd.sock), so each
instance runs in its own mount namespace (``unshare -m``) with private directories bound
over /var/spool, /var/lib and /run: nothing of the host's is touched or shared. Mail is
submitted over SMTP on its loopback port and relayed to the gateway.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from eventually import eventually
from mtapeers.ports import free_port
from mtapeers.procs import stop_server

CACHE = Path(os.environ.get("MXGATE_MTA_CACHE", Path.home() / ".cache/mxgate/mta"))
BINARY = CACHE / "opensmtpd/usr/sbin/smtpd"
USERS = ("opensmtpd", "opensmtpq")

# relay URL (and options) per TLS mode of the sending side.
TLS_MODES = {
    "off": "smtp+notls://127.0.0.1:{port}",
    "opportunistic": "smtp://127.0.0.1:{port}",
    "required": "smtp+tls://127.0.0.1:{port}",  # certificate verified against ``ca``
}


def available() -> bool:
    try:
        for user in USERS:
            pwd.getpwnam(user)
    except KeyError:
        return False
    return BINARY.exists() and os.geteuid() == 0 and shutil.which("unshare") is not None


class OpenSMTPD:
    """One smtpd listening on ``port`` that relays everything to the gateway."""

    def __init__(self, gateway_port: int, tls: str, ca: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"mxgate-smtpd-{tls}-"))
        self.root.chmod(0o755)
        self.port = free_port()
        for sub in ("spool", "lib/opensmtpd/empty", "run"):
            (self.root / sub).mkdir(parents=True)
        shutil.copy2(ca, self.root / "ca.pem")
        relay = TLS_MODES[tls].format(port=gateway_port)
        conf = self.root / "smtpd.conf"
        conf.write_text(
            f'ca "127.0.0.1" cert "{self.root}/ca.pem"\n'
            f'ca "localhost" cert "{self.root}/ca.pem"\n'
            f'ca "smtpd.test" cert "{self.root}/ca.pem"\n'
            f"listen on 127.0.0.1 port {self.port} hostname smtpd.test\n"
            f'action "gateway" relay host {relay} helo smtpd.test\n'
            'match from any for any action "gateway"\n'
        )
        conf.chmod(0o644)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def logfile(self) -> Path:
        return self.root / "smtpd.log"

    def start(self, timeout: float = 15.0) -> None:
        script = (
            "mount --make-rprivate / && "
            f"mount --bind {self.root}/spool /var/spool && "
            f"mount --bind {self.root}/lib /var/lib && "
            f"mount --bind {self.root}/run /run && "
            f"exec {BINARY} -d -v -f {self.root}/smtpd.conf"
        )
        with self.logfile.open("wb") as log:
            self._proc = subprocess.Popen(
                ["unshare", "--mount", "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT
            )
        proc = self._proc

        def greets() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"smtpd exited: {self.log()}")
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.settimeout(2)
                if s.recv(100).startswith(b"220 smtpd.test"):
                    s.sendall(b"QUIT\r\n")
                    return True
            return False

        eventually(greets, timeout, lambda: f"smtpd to listen: {self.log()}", ignore=(OSError,))

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def stop(self) -> None:
        stop_server(self._proc, self.root)
