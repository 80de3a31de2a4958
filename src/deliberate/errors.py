"""One small error hierarchy. The CLI maps every `DeliberateError` to one line and exit code 2."""


class DeliberateError(Exception):
    """Base of every error deliberate raises on purpose."""


class BadInput(DeliberateError):
    """The user gave something unusable: an empty question, a bad option, a malformed file."""


class UnknownName(DeliberateError):
    """A task, strategy or model spec that does not exist; the message lists the choices."""


class BackendError(DeliberateError):
    """A model could not be loaded or cannot do what was asked (e.g. a prompt too long)."""


class ProblemTooLong(BadInput):
    """One problem's prompt does not fit the model's context: that problem fails, not the run."""
