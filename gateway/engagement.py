"""What the people who get messages reach without any key, since the links are in the
messages: tracked links (`GET /t/c/{token}`, a redirect), the open pixel (`GET /t/o/{token}`)
and one-click unsubscribe (`GET|POST /u/{token}`, RFC 8058). The SDK's in-app impressions
and clicks are in inbox.py. The dispatch service verifies every token: a bad one
is a 404 and records nothing. The gateway redirects only to the URL dispatch answers."""

import base64
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import escape

from gateway.edge import CheckedRoute
from gateway.errors import LINK_ERRORS, ApiError
from gateway.rpc import rpc
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2 as pb

router = APIRouter(tags=["engagement"], route_class=CheckedRoute, responses=LINK_ERRORS)

# The 43-byte transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
# Each click, open and unsubscribe must reach us, not a cache.
NO_STORE = {"Cache-Control": "no-store"}
ANONYMOUS = common_pb2.RequestContext(actor="link")  # the workspace comes from the token

_PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>수신거부 · Unsubscribe</title></head>
<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">
<h1>수신거부 · Unsubscribe</h1>
{content}
</body></html>
"""
_CATEGORIES = {"advertising": ("광고성 정보", "advertising messages")}


def _client(request: Request) -> tuple[str, str]:
    return request.headers.get("user-agent", ""), request.client.host if request.client else ""


async def _record(request: Request, token: str, kind: str) -> pb.RecordEngagementReply:
    user_agent, ip = _client(request)
    return await rpc(request).dispatch.RecordEngagement(pb.RecordEngagementRequest(
        context=ANONYMOUS, token=token, kind=kind, user_agent=user_agent, ip=ip, request_id=str(uuid.uuid4())))


@router.get("/t/c/{token}", summary="A tracked link: records the click and redirects to the original URL")
async def click(token: str, request: Request) -> Response:
    reply = await _record(request, token, "click")
    if not reply.url.lower().startswith(("https://", "http://")):  # only web URLs are ever tracked
        raise ApiError(404, "not_found", "unknown link")
    return RedirectResponse(reply.url, status_code=302, headers=NO_STORE)


@router.get("/t/o/{token}", summary="The open pixel of an email: records the open")
async def open_pixel(token: str, request: Request) -> Response:
    await _record(request, token, "open")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/u/{token}", response_class=HTMLResponse,
            summary="Unsubscribe confirmation page; unsubscribes nothing by itself (scanners prefetch links)")
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    reply = await rpc(request).dispatch.CheckEngagementToken(pb.CheckEngagementTokenRequest(
        context=ANONYMOUS, token=token, kind="unsubscribe"))
    korean, english = _CATEGORIES.get(reply.category, (f"{reply.category} 메시지", f"{reply.category} messages"))
    # No action: the form posts to this same URL, as a mail client's one-click POST does.
    content = (f"<p>{escape(korean)} 수신을 거부하시겠어요? Stop receiving {escape(english)}?</p>\n"
               '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
               '<button type="submit">수신거부 · Unsubscribe</button></form>')
    return HTMLResponse(_PAGE.format(content=content), headers=NO_STORE)


@router.post("/u/{token}", response_class=HTMLResponse,
             summary="One-click unsubscribe (RFC 8058 body List-Unsubscribe=One-Click): withdraws the consent")
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    await _record(request, token, "unsubscribe")
    return HTMLResponse(_PAGE.format(content="<p>수신거부 처리되었습니다. You are unsubscribed.</p>"),
                        headers=NO_STORE)
