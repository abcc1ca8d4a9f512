"""kvserve's exceptions: one class per C++ status code, carrying the parts of
the library's message ("<op>: argument 'q': expected shape [4, 32, 128], got
[4, 32, 64]") as attributes."""

import re

__all__ = ["Error", "InvalidProblem", "Unsupported", "WorkspaceTooSmall", "CudaError", "InternalError",
           "ResourceExhausted"]

# "<op>: descriptor field 'x': expected E, got G" or "<op>: argument 'x': ...".
_PARTS = re.compile(r"^(?P<op>[^:]+): (?:descriptor field|argument) '(?P<field>[^']+)': "
                    r"expected (?P<expected>.*?), got (?P<given>.*)$", re.S)


class Error(RuntimeError):
    """A kvserve call failed. `code` is the C++ StatusCode's name; `op`,
    `field`, `expected` and `given` are parsed from the message when it has
    that form (None otherwise)."""

    code = "Internal"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        m = _PARTS.match(message)
        self.op, self.field, self.expected, self.given = (
            (m["op"], m["field"], m["expected"], m["given"]) if m else (None, None, None, None))


class InvalidProblem(Error, ValueError):
    """A bad descriptor field or argument (C++ InvalidArgument)."""
    code = "InvalidArgument"


class Unsupported(Error, NotImplementedError):
    """A valid request this build has no kernel for; the message names the configuration."""
    code = "Unsupported"


class WorkspaceTooSmall(Error, ValueError):
    """The workspace handed in is smaller than plan.workspace_bytes(): `needed` and `given` bytes."""
    code = "WorkspaceTooSmall"

    def __init__(self, message, needed=0, given=0):
        super().__init__(message)
        self.field, self.needed, self.given = "workspace", needed, given
        self.expected = f">= {needed} bytes"


class CudaError(Error):
    code = "CudaError"


class InternalError(Error):
    code = "Internal"


class ResourceExhausted(Error, MemoryError):
    """A host-side pool (BlockManager pages) is used up."""
    code = "ResourceExhausted"


_BY_CODE = {c.code: c for c in (InvalidProblem, Unsupported, WorkspaceTooSmall, CudaError, InternalError,
                                ResourceExhausted)}


def from_status(code, message, needed, got):
    """The exception for a failed C++ Status (called by the extension)."""
    if code == "WorkspaceTooSmall":
        return WorkspaceTooSmall(message, needed, got)
    return _BY_CODE.get(code, InternalError)(message)
