"""The loss report: bounded counters, rolling window, exact merge, rendering. Pure."""
