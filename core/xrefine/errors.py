"""Errors a user can cause.

`InputError` is raised for anything the user can fix (a bad file, a bad option, an impossible
problem).  The command line prints its message as one line and exits with status 2; every
other exception is a bug and keeps its traceback.
"""


class InputError(Exception):
    """A problem with the user's input: the message names the file, key or model and what to do."""
