"""The SDK's error hierarchy.

Every error says what was expected, what came, and (where there is one) what to do about it.
Input-validation errors that are plainly about a wrong argument type/shape subclass ``ValueError``
as well, so ``except ValueError`` keeps working for callers that do not know the SDK.
"""
from __future__ import annotations

__all__ = [
    "SDKError",
    "BackendUnavailable",
    "BackendError",
    "ModelFileError",
    "ModelContractError",
    "DecodeError",
    "SourceError",
    "DeviceConfigError",
]


class SDKError(Exception):
    """Base class of every error raised on purpose by ``sdk``."""


class BackendUnavailable(SDKError, ImportError):
    """An inference runtime is not installed (the message carries the exact ``pip install`` line)."""


class BackendError(SDKError):
    """A runtime failed to load or run a model, or the model does not suit the chosen backend."""


class ModelFileError(SDKError, ValueError):
    """A model file is missing, truncated, corrupt, or has an extension no backend reads."""


class ModelContractError(SDKError, ValueError):
    """The model contract is missing or invalid (the message names the field)."""


class DecodeError(SDKError, ValueError):
    """Model outputs do not have the shape the contract's decoder expects."""


class SourceError(SDKError):
    """A frame source could not be opened or failed while streaming."""


class DeviceConfigError(SDKError, ValueError):
    """A device config file is invalid (unknown key, wrong type, missing field)."""
