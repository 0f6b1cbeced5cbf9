"""Errors that reach users as one line (CLI exit code 2, `st.error` in the app)."""


class InputError(ValueError):
    """Bad input: the message says what is wrong and how to fix it, in one line."""


class ReadOnlyError(InputError):
    """A write was asked of a warehouse opened read-only (demo deployments)."""


class NotApplicableError(InputError):
    """The method cannot be applied to this model (e.g. BitFit on a model without biases)."""


class MissingPackageError(NotApplicableError):
    """The method needs a package that is not installed (installing it lifts this, so it is never cached)."""
