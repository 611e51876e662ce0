"""``mxgate estimate``: the loss report computed from an existing MTA's logs.

Parsers (``postfix``, ``exim``) turn log lines into session and transaction
facts; ``estimator`` counts them with the live report's own counting functions
and replays them through the policy engine. Only ``cli`` and ``reader`` do I/O.
"""
