"""What every route checks before its handler runs: path and query parameters and JSON bodies
within kit.limits (no NUL, no lone surrogate, integers a bigint holds, bounded strings,
arrays and nesting), bodies at most `max_request_bytes`. A refusal is the error envelope
naming the field (`rules.all[0].value`), never a 500 from a driver further in.

Every router is built with `route_class=CheckedRoute`."""

import json
import zlib
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, Field

from gateway.errors import ApiError
from kit import limits
from kit.errors import InvalidArgument


class CheckedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check_parameters(request)
            return await handler(CheckedRequest(request.scope, request.receive))

        return checked


class CheckedRequest(Request):
    """A request whose body is read up to the limit and whose JSON is checked as it is parsed."""

    async def body(self) -> bytes:
        if "nudge.body" not in self.scope:
            self.scope["nudge.body"] = await read_body(self, self.app.state.settings.max_request_bytes)
        return self.scope["nudge.body"]

    async def json(self) -> Any:
        if "nudge.json" not in self.scope:
            self.scope["nudge.json"] = json_body(await self.body())
        return self.scope["nudge.json"]


def check_parameters(request: Request) -> None:
    try:
        for name, value in request.path_params.items():
            limits.check_text(str(value), name, limits.MAX_ID_LENGTH)
        for name, value in request.query_params.multi_items():
            limits.check_text(name, limits.printable(name), limits.MAX_ID_LENGTH)
            limits.check_text(value, name, limits.MAX_QUERY_LENGTH)
    except InvalidArgument as err:
        raise invalid(err) from None


def json_body(body: bytes) -> Any:
    """The body as JSON within kit.limits. The standard library's parser, not orjson: it reads a
    lone surrogate or an out-of-range number, so the check below can name the field holding it."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise invalid(InvalidArgument(f"body: nested deeper than {limits.MAX_DEPTH} levels", field="body")) from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, a 5,000-digit number, bad UTF-8
        raise invalid(InvalidArgument(f"body: not valid JSON ({err})", field="body")) from None
    try:
        return limits.check_json(value)
    except InvalidArgument as err:
        raise invalid(err) from None


def invalid(err: InvalidArgument) -> ApiError:
    return ApiError(422, "invalid_argument", err.message, {"field": err.field})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, gunzipped, refusing more than `limit` bytes (compressed or not)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if request.headers.get("content-encoding", "").lower() != "gzip":
        return bytes(body)
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(bytes(body), limit + 1)
    except zlib.error:
        raise ApiError(400, "malformed_body", "body is not valid gzip") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise ApiError(400, "malformed_body", "gzip body is truncated")
    return data


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"body larger than {limit // 1024} KB")


def _between_1970_and_2099(value: datetime) -> datetime:
    moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not limits.EARLIEST <= moment < limits.LATEST:
        raise ValueError("expected a date-time between 1970 and 2099")
    return value


# Date-times a request may carry (1970–2099): with a zone, or (Moment) read as UTC without one.
AwareMoment = Annotated[AwareDatetime, AfterValidator(_between_1970_and_2099)]
Moment = Annotated[datetime, AfterValidator(_between_1970_and_2099)]
Name = Annotated[str, Field(min_length=1, max_length=limits.MAX_ID_LENGTH)]
Description = Annotated[str, Field(max_length=2_000)]
Id = Annotated[str, Field(min_length=1, max_length=limits.MAX_ID_LENGTH)]
