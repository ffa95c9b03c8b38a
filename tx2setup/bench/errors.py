"""The benchmark's own exceptions (it cannot import tx2setup.errors on a board)."""


class BenchError(Exception):
    """Base of the benchmark's errors; the CLI prints the message on one line."""

    exit_code = 1


class BenchUsageError(BenchError):
    """Bad command line or input file: exit 2."""

    exit_code = 2


class BackendUnavailable(BenchError):
    """A backend cannot run here; the message is the reason shown by --list-backends."""
