"""The project's exceptions: every error meant for a user (bad input, a broken file, a
configuration that cannot work) is a `NeueditError`, and the CLI prints its message on one
line; anything else is a bug and keeps its traceback.

The kinds also subclass the built-in they replace (ValueError, FileNotFoundError), so code
that catches those keeps working.
"""
from __future__ import annotations


class NeueditError(Exception):
    """Base of every user-facing neuedit error."""


class UsageError(NeueditError, ValueError):
    """A value, option or configuration that cannot be used as given."""


class MissingFileError(NeueditError, FileNotFoundError):
    """A file or folder the user named does not exist."""
