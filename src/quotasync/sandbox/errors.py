"""Errors the way a Salesforce org answers them on the wire."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A REST error: an HTTP status and a JSON array of `{"message", "errorCode"}`."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


class RecordError(Exception):
    """A per-record DML failure; reported as `statusCode` inside results, or as a REST error."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []

    def as_result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def as_api_error(self) -> ApiError:
        status = 404 if self.code == "NOT_FOUND" else 400
        return ApiError(status, self.code, self.message, self.fields)


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def retired_version(version: str) -> ApiError:
    """A request to a retired API version (v7.0 to v30.0): Salesforce answers 410 GONE (the
    wording is the sandbox's own)."""
    return ApiError(410, "GONE", f"API version {version} is retired and no longer available")


def invalid_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded(what: str = "TotalRequests") -> ApiError:
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED", f"{what} Limit exceeded.")


def json_parser_error(detail: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", detail)


def exceeded_id_limit(limit: int) -> ApiError:
    return ApiError(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {limit} records into this call",
    )


def unable_to_lock_row(record_id: str | None = None) -> RecordError:
    """The `lock_rate` fault: a record write that could not get its row lock."""
    return RecordError(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}",
    )
