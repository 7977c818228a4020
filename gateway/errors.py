"""One error shape for every failure: {"error": {"code", "message", "details"}}, never a trace."""

from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from grpc import aio
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.errors import field_of
from kit.logs import get_logger

log = get_logger(__name__)


class ApiError(StarletteHTTPException):
    """An HTTP error in the envelope. An HTTPException, so FastAPI lets one raised while it reads
    a request body (gateway.edge) through as it is, instead of a bare 400."""

    def __init__(self, status: int, code: str, message: str, details: dict | list | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(status, message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers


_GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthorized"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
}


class ErrorBody(BaseModel):
    code: str = Field(..., examples=["invalid_argument"])
    message: str = Field(..., examples=["rules.all[0].op: unknown 'equals'; expected one of eq, neq, gt, gte, lt, lte"])
    details: dict[str, Any] = Field(..., description="`field`: the field at fault (a path such as `rules.all[0].op`); "
                                                     "`fields`: several, each with its `reason`; `rejected`: a batch's "
                                                     "refused calls by index", examples=[{"field": "rules.all[0].op"}])


class ErrorEnvelope(BaseModel):
    """Every failure has this shape, never a trace."""
    error: ErrorBody


_MEANINGS = {400: "Malformed request (not JSON, bad gzip)", 401: "Missing, unknown or revoked API key",
             403: "The other kind of key", 404: "Not found in this workspace", 409: "Conflicts with the current state",
             413: "Body too large", 415: "Unsupported content type",
             422: "Invalid input; `details` names the field", 429: "Rate limited; see Retry-After",
             503: "A service is unavailable; retry later"}


def responses(*statuses: int) -> dict[int, dict]:
    """The OpenAPI `responses` of the given error statuses, each with the error envelope."""
    return {status: {"model": ErrorEnvelope, "description": _MEANINGS[status]} for status in statuses}


ADMIN_ERRORS = responses(401, 403, 404, 409, 413, 422, 429, 503)   # management routes, admin key
WRITE_ERRORS = responses(400, 401, 403, 413, 422, 429, 503)        # tracking routes, write key
LINK_ERRORS = responses(404, 422, 503)                             # links in messages, no key


def from_rpc(err: aio.AioRpcError) -> ApiError:
    status, code = _GRPC_TO_HTTP.get(err.code(), (500, "internal"))
    if status == 500:
        log.error("service call failed", grpc_code=str(err.code()), details=err.details())
        return ApiError(500, "internal", "internal error")
    if status == 503:
        return ApiError(503, code, "a service is unavailable; retry later")
    field = field_of(err)
    return ApiError(status, code, err.details() or code, {"field": field} if field else {})


def _body(status: int, code: str, message: str, details) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details}}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError):
        response = _body(err.status, err.code, err.message, err.details)
        response.headers.update(err.headers or {})
        return response

    @app.exception_handler(aio.AioRpcError)
    async def rpc_error(request: Request, err: aio.AioRpcError):
        return await api_error(request, from_rpc(err))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError):
        fields = [{"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                   "reason": e["msg"]} for e in err.errors()]
        message = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
        return _body(422, "invalid_argument", message, {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException):
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return _body(err.status_code, code, str(err.detail), {})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, err: Exception):
        log.exception("unhandled error")
        return _body(500, "internal", "internal error", {})
