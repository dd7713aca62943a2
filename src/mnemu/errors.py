"""The one exception users see: a one-line message that names the problem and the fix."""


class MnemuError(ValueError):
    """Bad input to mnemu (a data set, a checkpoint, a class, a hyper-parameter).

    The message is one line: what is wrong, then what to do about it.
    """
