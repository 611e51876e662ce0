"""A private, real Exim 4 receiver: own config, spool and main log, loopback only.

Runs the Exim binary that ``scripts/install-mta-senders.sh`` unpacks under
``~/.cache/mxgate/mta`` (never a system Exim) as ``exim4 -C CONF -bdf``. It takes
mail for ``accepted.test`` and ``vip.test`` and, like the Postfix receiver of the
estimate tests, refuses ``nosuch*`` recipients (550), relaying (550) and messages
whose Subject holds ``SPAM`` (550 after DATA); accepted mail stays queued.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from eventually import eventually
from mtapeers.exim import BINARY, USER, available
from mtapeers.ports import free_port
from mtapeers.procs import stop_server

__all__ = ["RICH_SELECTOR", "EximReceiver", "available"]

#: What the estimate needs (docs/loss-report.md, "Before you install"): sessions with their TLS
#: (+smtp_connection +smtp_no_mail +pid) and recipients (+received_recipients).
RICH_SELECTOR = "+smtp_connection +smtp_no_mail +pid +received_recipients +tls_cipher"

CONFIG = """\
exim_user = {user}
exim_group = {user}
never_users = root
primary_hostname = {name}.test
smtp_banner = $primary_hostname ESMTP
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
domainlist local_domains = accepted.test : vip.test
tls_advertise_hosts = *
tls_certificate = {root}/tls.crt
tls_privatekey = {root}/tls.key
{selector}
host_lookup =
rfc1413_hosts =
keep_environment =
queue_only = true
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data

begin acl
acl_rcpt:
  deny    message = relay not permitted
          domains = ! +local_domains
  deny    message = unknown user
          local_parts = ^nosuch
  accept
acl_data:
  deny    message = spam refused
          condition = ${{if match{{$h_subject:}}{{SPAM}}}}
  accept

begin routers
local:
  driver = accept
  domains = +local_domains
  transport = store

begin transports
store:
  driver = appendfile
  file = {root}/mail/$local_part
  user = {user}
"""


class EximReceiver:
    """One Exim daemon; ``log_selector`` None keeps Exim's default selector."""

    def __init__(self, name: str, cert: Path, key: Path, log_selector: str | None) -> None:
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"mxgate-exim-{name}-"))
        self.root.chmod(0o755)  # the receiving process runs as Debian-exim
        self.port = free_port()
        self.log_selector = log_selector
        self._proc: subprocess.Popen[bytes] | None = None
        uid, gid = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid
        for sub in ("spool", "log", "mail"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, uid, gid)
        for src, dst in ((cert, "tls.crt"), (key, "tls.key")):
            shutil.copyfile(src, self.root / dst)
            os.chown(self.root / dst, uid, gid)
            (self.root / dst).chmod(0o600)

    @property
    def logfile(self) -> Path:
        return self.root / "log" / "mainlog"

    def _write_config(self) -> Path:
        selector = f"log_selector = {self.log_selector}" if self.log_selector else ""
        conf = self.root / "exim.conf"
        conf.write_text(
            CONFIG.format(
                user=USER, name=self.name, root=self.root, port=self.port, selector=selector
            )
        )
        return conf

    def start(self, timeout: float = 15.0) -> None:
        """Start the daemon in the foreground; ready when the log says it listens."""
        env = {"PATH": os.environ.get("PATH", "")}
        for _ in range(3):
            conf = self._write_config()
            self._proc = subprocess.Popen(
                [str(BINARY), "-C", str(conf), "-bdf"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._listens(self._proc, timeout):
                return
            self.port = free_port()  # it exited: the port was taken, try another
        raise RuntimeError(f"exim {self.name} exited three times: {self.log()[-2000:]}")

    def _listens(self, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        """True once the log says it listens, False if it exited first."""
        listening = f"listening for SMTP on [127.0.0.1]:{self.port}"
        state = eventually(
            lambda: "exited" if proc.poll() is not None else listening in self.log(),
            timeout,
            lambda: f"exim {self.name} to listen: {self.log()[-2000:]}",
            interval=0.05,
        )
        return state is True

    def stop(self) -> None:
        stop_server(self._proc, self.root)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")
        return ""
