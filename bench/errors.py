"""The one error the benchmark reports as a clean message instead of a traceback."""


class BenchError(Exception):
    """Something prevented a measurement: a server that did not start, a database, a setup step."""
