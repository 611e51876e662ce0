"""Configuration: the typed model (the operator's contract) and its loader.

Nothing here binds sockets or starts tasks; watching files lives in the watcher.
"""
