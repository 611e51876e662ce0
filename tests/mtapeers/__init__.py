"""Real mail peers for the test suite: private Postfix instances, raw SMTP clients, fakes.

Fakes are named as fakes and exist only where no real peer can misbehave on cue.
"""
