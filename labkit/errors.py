"""The few exception classes users see; each message names the resource and the fix."""

from __future__ import annotations


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


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
