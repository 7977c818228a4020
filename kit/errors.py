"""Domain errors, and the one place they become gRPC status codes (and back)."""

import grpc
from grpc import aio

from kit.logs import get_logger

log = get_logger(__name__)

FIELD_METADATA_KEY = "nudge-error-field"


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


class DomainErrorInterceptor(aio.ServerInterceptor):
    """Turns a DomainError raised by a unary handler into its status code and message."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def guarded(request, context: aio.ServicerContext):
            try:
                return await inner(request, context)
            except DomainError as err:
                if err.field:
                    context.set_trailing_metadata(((FIELD_METADATA_KEY, err.field),))
                await context.abort(err.code, err.message)
            except Exception:
                # The details of an unexpected failure (SQL, parameters: user data) stay in
                # this service's log; the caller learns only that it failed.
                log.exception("unexpected error", method=handler_call_details.method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def field_of(error: aio.AioRpcError) -> str | None:
    """The field a server-side InvalidArgument named, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == FIELD_METADATA_KEY:
            return value
    return None
