"""The few exception classes users see; each message names the resource and the fix."""

from __future__ import annotations


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error in a notebook: its message, which says what to do.

        Its message is written for the student; the frames of labkit that raised it are not theirs
        and would bury it (IPython calls this instead of formatting the traceback).
        """
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(LabkitError):
    """The configuration or the environment is wrong."""


class ResourceError(LabkitError):
    """An AWS resource is missing, misconfigured or could not be created."""


class AccessError(LabkitError):
    """The credentials in use may not do what was asked."""


class NotReadyError(LabkitError):
    """A wait ran out before the pipeline reached the expected state."""


class InputError(LabkitError):
    """An order or command-line input is malformed."""
