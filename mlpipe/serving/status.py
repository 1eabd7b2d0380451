"""Request errors with TF Serving's canonical codes, and the HTTP status each code maps to.

The REST and gRPC front ends both raise and catch :class:`ServingRequestError`, so one failure reads
the same on either protocol: the gRPC status code is the code's name, and the REST answer is
``{"error": message}`` with the HTTP status TF Serving's own server would use for that code.
"""

from __future__ import annotations

from mlpipe.errors import ServingError

# tensorflow.error.Code -> HTTP status, as TF Serving's HTTP server maps them.
HTTP_STATUS_OF_CODE: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# The reverse, for clients that only see an HTTP status: the most common code behind each status.
CODE_OF_HTTP_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ServingRequestError(ServingError):
    """A request the server refused or failed, with TF Serving's canonical error code.

    ``code`` is a ``tensorflow.error.Code`` name such as ``"INVALID_ARGUMENT"``; ``http_status`` is
    what a REST client sees. Clients raise it too, carrying the server's message.
    """

    def __init__(self, code: str, message: str, http_status: int | None = None):
        if code not in HTTP_STATUS_OF_CODE:
            raise ValueError(f"unknown error code {code!r}; expected one of {sorted(HTTP_STATUS_OF_CODE)}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else HTTP_STATUS_OF_CODE[code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid_argument(message: str) -> ServingRequestError:
    """The request itself is wrong (HTTP 400); the message must say which field and why."""
    return ServingRequestError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingRequestError:
    """The model, version, label or signature named by the request does not exist (HTTP 404)."""
    return ServingRequestError("NOT_FOUND", message)
