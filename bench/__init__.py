"""The mxgate benchmark harness: ``python -m bench`` (or ``make bench``).

Measures direct-to-sink, mxgate and Haraka one after another in the same run,
with smtp-sink as the counted upstream. Nothing here is imported by the gateway.
"""
