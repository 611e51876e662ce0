"""The test suite's one home for the peers the gateway talks to, real and fake.

Real: private Postfix, Exim and OpenSMTPD instances (``postfix``, ``exim``,
``exim_receiver``, ``opensmtpd``), Postfix's ``smtp-sink`` (``smtpsink``, also the
benchmark's counted upstream), HAProxy (``haproxy``), a recording aiosmtpd upstream
(``recorder``; ``upstream`` runs it as a killable process), raw and bounded-load SMTP
clients (``raw``, ``load``, ``mailmix``) and the gateway itself as a process
(``gatewayproc``, ``scenario``). Fakes are named as fakes (``fakes.FakeUpstream``,
``hostile``) and exist only where no real peer can misbehave on cue. Nothing here
asserts what the gateway should do; tests do.
"""
