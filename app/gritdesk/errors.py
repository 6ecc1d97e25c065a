"""The one base class for errors a user caused or can fix; the CLI prints these plainly.

Every layer raises subclasses of `GritdeskError` with a message that names the file or
value at fault; anything else reaching the top is a bug and keeps its traceback.
"""


class GritdeskError(Exception):
    pass
