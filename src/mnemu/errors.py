"""The one exception users see: a one-line message that names the problem and the fix."""


class MnemuError(ValueError):
    """Bad input to mnemu (a data set, a checkpoint, a class, a hyper-parameter).

    The message is one line: what is wrong, then what to do about it.
    """


class DamagedFile(MnemuError):
    """A file that exists but cannot be read back (truncated, corrupted, not what it should be).

    ``path`` names the file and ``reason`` says what failed, so that a caller that knows where
    the file came from (a workflow rule) can name the fix."""

    def __init__(self, message: str, path, reason: str):
        super().__init__(message)
        self.path = path
        self.reason = reason
