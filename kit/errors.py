"""Domain errors, and the one place they become gRPC status codes (and back)."""

from collections.abc import Callable

import grpc
from grpc import aio

from kit.logs import get_logger

log = get_logger(__name__)

# Binary metadata: a field path may name a non-ASCII key (`channels.이메일`), which text metadata cannot carry.
FIELD_METADATA_KEY = "nudge-error-field-bin"


class DomainError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class Conflict(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class DomainErrorInterceptor(aio.ServerInterceptor):
    """Turns a DomainError raised by a unary or server-streaming handler into its status
    code and message. `check(request)`, when given, runs first on every request (the limits
    every service enforces at its edge, kit.limits.check_message) and may raise one."""

    def __init__(self, check: Callable[[object], None] | None = None) -> None:
        self.check = check or (lambda request: None)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or (handler.unary_unary is None and handler.unary_stream is None):
            return handler
        method, check = handler_call_details.method, self.check

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def guarded(request, context: aio.ServicerContext):
                async with _reported(context, method):
                    check(request)
                    return await inner(request, context)

            make = grpc.unary_unary_rpc_method_handler
        else:
            streaming = handler.unary_stream

            async def guarded(request, context: aio.ServicerContext):
                async with _reported(context, method):
                    check(request)
                    async for item in streaming(request, context):
                        yield item

            make = grpc.unary_stream_rpc_method_handler
        return make(guarded, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


class _reported:
    """A DomainError becomes its status; anything else INTERNAL."""

    def __init__(self, context: aio.ServicerContext, method: str) -> None:
        self.context, self.method = context, method

    async def __aenter__(self):
        return self

    async def __aexit__(self, kind, err, tb):
        if err is None or isinstance(err, aio.AbortError) or not isinstance(err, Exception):
            return False
        if isinstance(err, DomainError):
            if err.field:
                self.context.set_trailing_metadata(((FIELD_METADATA_KEY, err.field.encode()),))
            await self.context.abort(err.code, err.message)
        # The details of an unexpected failure (SQL, parameters: user data) stay in this
        # service's log; the caller learns only that it failed.
        log.error("unexpected error", method=self.method, exc_info=(kind, err, tb))
        await self.context.abort(grpc.StatusCode.INTERNAL, "internal error")


def field_of(error: aio.AioRpcError) -> str | None:
    """The field a server-side InvalidArgument named, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == FIELD_METADATA_KEY:
            return value.decode(errors="replace")
    return None
