"""The one exception type for errors a user can cause (bad data, bad flags, missing files).

tasks.py turns it into one sentence on stderr and a non-zero exit; anything else is our bug and
keeps its traceback. It subclasses ValueError so plain callers can still catch it as one.
"""


class UserError(ValueError):
    """A problem the user can fix; the message is one sentence that says how."""
