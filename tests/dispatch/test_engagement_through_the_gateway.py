"""Tracked links, the open pixel, one-click unsubscribe and in-app engagement, end to end:
a message over a real local provider, its links followed on the gateway, the facts in the
engagements table and on nudge.engagement.v1; and every forged, tampered or redirecting
attempt answered 404 with nothing recorded."""

import uuid

import grpc
import httpx
import pytest
from sqlalchemy import func, select

from kit.payloads import ENGAGEMENT
from kit.streams import StreamEvent
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from services.dispatch.models import deliveries, engagements
from services.dispatch.service import SendSpec
from services.dispatch.simulation import Simulation
from services.dispatch.templates import euc_kr_length
from services.dispatch.tokens import Tokens
from tests.dispatch import provider_servers as fake
from tests.support.api import consent, inbox, person, send, signed_in
from tests.support.api import setup as configure
from tests.support.channels import AD_POLICY, daytime, sms_config, smtp_config, text_of
from tests.support.streams import delivery_events
from tests.support.waiting import eventually
from tests.dispatch.tracked import click_url, open_url, path_of, unsubscribe_url

BROWSER = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Mobile/15E148")
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SPRING = "https://shop.kr/spring?ref=mail"
SPRING_TRACKED = SPRING + "&utm_source=nudge&utm_medium=email&utm_campaign=j-spring&utm_content=welcome"
OWN_UTM = "https://shop.kr/p/7?utm_source=news&x=1"
NEWSLETTER = {"subject": "봄 소식", "text": f"봄 세일: {SPRING}\n상품: {OWN_UTM}.",
              "html": f'<html><body><p>봄 소식</p><a href="{SPRING}">봄 세일</a> '
                      f"<a href='{OWN_UTM.replace('&', '&amp;')}'>상품</a> "
                      '<a href="mailto:help@shop.kr">문의</a></body></html>'}


@pytest.fixture
async def visitor(gateway_url):
    """Someone following links in a message: no API key, redirects not followed."""
    async with httpx.AsyncClient(base_url=gateway_url, headers={"User-Agent": BROWSER}, timeout=30) as client:
        yield client


async def facts(platform, workspace_id: str) -> list:
    async with platform.service.sessions() as session:
        return list(await session.execute(select(engagements).where(engagements.c.workspace_id == workspace_id)
                                          .order_by(engagements.c.at)))


async def engagement_events(redis, workspace_id: str, count: int) -> list[StreamEvent]:
    """The workspace's events on nudge.engagement.v1 once `count` are published; exactly that many."""
    async def enough():
        found = [StreamEvent.from_fields(fields) for _, fields in await redis.xrange(ENGAGEMENT)
                 if fields.get(b"workspace_id", b"").decode() == workspace_id]
        return found if len(found) >= count else None
    found = await eventually(enough)
    assert len(found) == count, [(e.type, e.payload) for e in found]
    return found


async def newsletter(workspace, platform, smtp, user: str = "reader") -> tuple[str, dict]:
    """An informational journey email with two links (one with its own UTM) to a new person."""
    profile = await person(workspace, user, {"name": "Kim", "email": f"{user}@example.kr"})
    await configure(workspace, {"email": NEWSLETTER}, {"email": smtp_config(smtp)})
    delivery = await platform.service.send(workspace.id, "test-key", SendSpec(
        f"k-{uuid.uuid4()}", profile, ["email"], "hello", journey_id="j-spring", node_id="welcome",
        journey_version=3, variant="B"))
    assert delivery["status"] == "sent", delivery
    return profile, delivery


async def test_an_email_arrives_with_tracked_links_the_open_pixel_and_one_click_unsubscribe(
        workspace, dispatch_platform, redis):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile, delivery = await newsletter(workspace, dispatch_platform, smtp)
    ws, did = workspace.id, delivery["id"]
    # The originals, UTM applied, are stored with the delivery; the index is the link id.
    assert delivery["links"] == [SPRING_TRACKED, OWN_UTM]
    spring, own = click_url(dispatch_platform, ws, did, 0), click_url(dispatch_platform, ws, did, 1)
    msg = smtp.mail[0].message
    assert text_of(msg, "plain") == f"봄 세일: {spring}\n상품: {own}.\n"
    assert text_of(msg, "html") == (
        f'<html><body><p>봄 소식</p><a href="{spring}">봄 세일</a> <a href="{own}">상품</a> '
        '<a href="mailto:help@shop.kr">문의</a>'
        f'<img src="{open_url(dispatch_platform, ws, did)}" width="1" height="1" alt=""></body></html>\n')
    # Not transactional, so it can be unsubscribed from (RFC 8058): this one withdraws email.
    assert msg["List-Unsubscribe"] == f"<{unsubscribe_url(dispatch_platform, ws, did, 'email')}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The journey's version and variant ride on the delivery's events.
    [sent] = await delivery_events(redis, ws, did, ["delivery.sent"])
    assert (sent.payload["journey_version"], sent.payload["variant"], sent.payload["journey_id"]) == (
        3, "B", "j-spring")
    assert await facts(dispatch_platform, ws) == []


async def test_following_a_tracked_link_redirects_to_the_original_and_records_the_click(
        workspace, dispatch_platform, redis, visitor):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile, delivery = await newsletter(workspace, dispatch_platform, smtp)
    ws, did = workspace.id, delivery["id"]
    first = await visitor.get(path_of(click_url(dispatch_platform, ws, did, 0)))
    assert first.status_code == 302 and first.headers["location"] == SPRING_TRACKED
    assert first.headers["cache-control"] == "no-store"
    # A link that had its own utm_ parameters is left as the author wrote it.
    own = await visitor.get(path_of(click_url(dispatch_platform, ws, did, 1)))
    assert own.status_code == 302 and own.headers["location"] == OWN_UTM
    again = await visitor.get(path_of(click_url(dispatch_platform, ws, did, 0)) + "?url=https://evil.example")
    assert again.status_code == 302 and again.headers["location"] == SPRING_TRACKED  # the query changes nothing

    events = await engagement_events(redis, ws, 3)
    assert [e.type for e in events] == ["engagement.clicked"] * 3
    assert {e.profile_id for e in events} == {profile}
    assert len({e.payload["fact_id"] for e in events}) == 3  # each click its own fact
    click = dict(events[0].payload)
    assert str(uuid.UUID(click.pop("fact_id"))) and click.pop("at")
    assert click == {"delivery_id": did, "channel": "email", "template_id": "hello", "journey_id": "j-spring",
                     "journey_version": 3, "node_id": "welcome", "variant": "B", "link_id": 0,
                     "url": SPRING_TRACKED, "machine": False, "category": "",
                     "utm": {"source": "nudge", "medium": "email", "campaign": "j-spring", "content": "welcome"}}
    assert (events[1].payload["link_id"], events[1].payload["url"], events[1].payload["utm"]) == (
        1, OWN_UTM, {"source": "news"})
    rows = await facts(dispatch_platform, ws)
    assert [(r.kind, r.link_id, r.user_agent, r.machine) for r in rows] == [
        ("clicked", 0, BROWSER, False), ("clicked", 1, BROWSER, False), ("clicked", 0, BROWSER, False)]
    assert {r.id for r in rows} == {e.payload["fact_id"] for e in events}


async def test_the_open_pixel_records_opens_and_flags_the_gmail_image_proxy(workspace, dispatch_platform, redis,
                                                                          visitor):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        _, delivery = await newsletter(workspace, dispatch_platform, smtp)
    pixel = path_of(open_url(dispatch_platform, workspace.id, delivery["id"]))
    person_open = await visitor.get(pixel)
    assert person_open.status_code == 200 and person_open.headers["content-type"] == "image/gif"
    assert len(person_open.content) == 43 and person_open.content.startswith(b"GIF89a\x01\x00\x01\x00")
    assert person_open.headers["cache-control"] == "no-store"
    proxy_open = await visitor.get(pixel, headers={"User-Agent": GMAIL_PROXY})
    assert proxy_open.status_code == 200
    events = await engagement_events(redis, workspace.id, 2)
    assert [(e.type, e.payload["machine"], e.payload["link_id"], e.payload["url"], e.payload["utm"])
            for e in events] == [("engagement.opened", False, None, None, {}),
                                 ("engagement.opened", True, None, None, {})]


async def test_forged_tampered_and_redirecting_links_are_404_and_record_nothing(workspace, dispatch_platform, redis,
                                                                               visitor):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        _, delivery = await newsletter(workspace, dispatch_platform, smtp)
    ws, did, tokens = workspace.id, delivery["id"], dispatch_platform.service.tokens
    good = tokens.click(ws, did, 0)
    flipped = [good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1:] for i in (0, 5, len(good) // 2, -1)]
    attempts = [
        *(f"/t/c/{token}" for token in flipped),                            # tampered
        f"/t/c/{tokens.click(ws, did, 2)}",                                # a link id the delivery does not have
        f"/t/c/{tokens.click(ws, str(uuid.uuid4()), 0)}",                  # a delivery that does not exist
        f"/t/c/{tokens.click('other-workspace', did, 0)}",                 # another workspace's delivery id
        f"/t/c/{Tokens(b'a guessed secret').click(ws, did, 0)}",           # signed with another secret
        f"/t/c/{good[:-22]}{tokens.click(ws, did, 1)[-22:]}",              # link swapped by splicing tokens
        f"/t/c/{tokens.open(ws, did)}",                                    # a pixel token used as a link
        f"/t/o/{good}",                                                    # a link token used as the pixel
        f"/t/o/{tokens.open(ws, did)[:-1]}",
        "/t/c//evil.example", "/t/c/%2F%2Fevil.example", "/t/c/https:%2F%2Fevil.example",
        "/t/c/aHR0cHM6Ly9ldmlsLmV4YW1wbGU", f"/t/c/{good}/..%2F..%2Fevil.example", "/t/c/",
    ]
    for path in attempts:
        answer = await visitor.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.headers.get("location"))
        assert "location" not in answer.headers
    for path in (f"/u/{good}", f"/u/{flipped[1]}"):
        assert (await visitor.get(path)).status_code == 404
        assert (await visitor.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 404
    assert await facts(dispatch_platform, ws) == []

    # The one honest click afterwards is the only fact and the only event.
    assert (await visitor.get(f"/t/c/{good}")).status_code == 302
    [event] = await engagement_events(redis, ws, 1)
    assert event.type == "engagement.clicked" and event.payload["link_id"] == 0
    assert len(await facts(dispatch_platform, ws)) == 1


async def test_get_on_an_unsubscribe_link_only_asks_and_the_one_click_post_withdraws_advertising(
        workspace, dispatch_platform, dispatch_clock, redis, visitor):
    dispatch_clock.set(daytime())
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "ad-reader", {"name": "Kim", "email": "ad-reader@example.kr"})
        await consent(workspace, profile, email=True, advertising=True)
        await configure(workspace, {"email": NEWSLETTER}, {"email": smtp_config(smtp)}, policy=AD_POLICY)
        delivery = await send(workspace, profile, ["email"], advertising=True, transactional=False)
    assert delivery["status"] == "sent"
    one_click = unsubscribe_url(dispatch_platform, workspace.id, delivery["id"], "advertising")
    msg = smtp.mail[0].message
    assert msg["List-Unsubscribe"] == f"<{one_click}>, <https://shop.kr/unsubscribe>"
    assert f'<a href="{one_click}">수신거부(unsubscribe)</a>' in text_of(msg, "html")

    async def consents() -> dict:
        return (await workspace.admin.get(f"/v1/profiles/{profile}")).json()["consent"]

    # A link scanner's GET (or the person's) shows a page with a form: nothing changes.
    page = await visitor.get(path_of(one_click))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert '<form method="post">' in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "광고성 정보" in page.text
    assert (await consents())["ads:email"]["granted"] is True
    assert await facts(dispatch_platform, workspace.id) == []

    # RFC 8058: the mail provider POSTs List-Unsubscribe=One-Click to the same URL.
    done = await visitor.post(path_of(one_click), data={"List-Unsubscribe": "One-Click"},
                              headers={"User-Agent": GMAIL_PROXY})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    after = await consents()
    assert after["ads:email"]["granted"] is False  # advertising by email, not the channel
    assert after["ads:email"]["source"] == f"unsubscribe:{delivery['id']}"
    assert after["ads:sms"]["granted"] is True  # advertising by other channels stays as it was
    assert after["channel:email"]["granted"] is True
    # Following it again is the same unsubscribe: no second fact, no second event.
    assert (await visitor.post(path_of(one_click), data={"List-Unsubscribe": "One-Click"})).status_code == 200
    [event] = await engagement_events(redis, workspace.id, 1)
    assert event.type == "engagement.unsubscribed" and event.profile_id == profile
    assert (event.payload["category"], event.payload["machine"], event.payload["link_id"]) == ("advertising", False,
                                                                                               None)
    assert len(await facts(dispatch_platform, workspace.id)) == 1

    # The next ad finds the consent withdrawn.
    with fake.SmtpProvider("mailer", "pw") as smtp:
        await configure(workspace, {"email": NEWSLETTER}, {"email": smtp_config(smtp)})
        refused = await send(workspace, profile, ["email"], advertising=True, transactional=False)
    assert refused["status"] == "suppressed" and refused["rule"] == "consent:ads:email" and smtp.mail == []


async def test_unsubscribing_from_an_informational_email_withdraws_the_email_channel(workspace, dispatch_platform,
                                                                                   redis, visitor):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile, delivery = await newsletter(workspace, dispatch_platform, smtp, user="leaver")
        one_click = unsubscribe_url(dispatch_platform, workspace.id, delivery["id"], "email")
        assert (await visitor.post(path_of(one_click))).status_code == 200
        consents = (await workspace.admin.get(f"/v1/profiles/{profile}")).json()["consent"]
        assert consents["channel:email"]["granted"] is False and "advertising" not in consents
        [event] = await engagement_events(redis, workspace.id, 1)
        assert (event.type, event.payload["category"]) == ("engagement.unsubscribed", "email")
        later = await dispatch_platform.service.send(workspace.id, "test-key", SendSpec(
            f"k-{uuid.uuid4()}", profile, ["email"], "hello", journey_id="j-spring", node_id="welcome"))
    assert later["status"] == "suppressed" and later["rule"] == "consent:channel:email" and len(smtp.mail) == 1


async def test_sms_carries_a_tracked_url_whose_length_makes_it_an_lms(workspace, dispatch_platform, visitor):
    text = "주문하신 상품을 확인하세요 https://shop.kr/o/1"
    assert euc_kr_length(text) <= 90
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "sms-link", {"phone": "010-1234-5678"})
        await configure(workspace, {"sms": {"text": text, "title": "주문"}}, {"sms": sms_config(nhn)})
        delivery = await send(workspace, profile, ["sms"])
    tracked = click_url(dispatch_platform, workspace.id, delivery["id"], 0)
    [got] = nhn.received
    assert euc_kr_length(f"주문하신 상품을 확인하세요 {tracked}") > 90
    assert got.path == "/sms/v3.0/appKeys/sms-app/sender/mms"  # sent as LMS: the tracked URL counts
    assert got.json()["body"] == f"주문하신 상품을 확인하세요 {tracked}" and got.json()["title"] == "주문"
    followed = await visitor.get(path_of(tracked))
    assert followed.headers["location"] == \
        "https://shop.kr/o/1?utm_source=nudge&utm_medium=sms&utm_campaign=direct"


async def test_in_app_impressions_and_clicks_are_reported_with_the_write_key(workspace, dispatch_platform, redis):
    profile = await person(workspace, "app-user", name="Kim")
    await person(workspace, "someone-else")
    await configure(workspace, {"inapp": {"title": "Hi", "body": "New arrivals", "url": "https://shop.kr/new"}})
    delivery = await send(workspace, profile, ["inapp"])
    [message] = await inbox(workspace, "app-user")
    assert message["url"] == click_url(dispatch_platform, workspace.id, delivery["id"], 0)
    base = f"/v1/inapp/{delivery['id']}"

    app_user = await signed_in(workspace, "app-user")
    shown = await workspace.tracking.post(f"{base}/impression", **app_user)
    assert shown.status_code == 200 and shown.json() == {"recorded": True}
    clicked = await workspace.tracking.post(f"{base}/click", **app_user)
    assert clicked.status_code == 200 and clicked.json() == {"recorded": True}
    # Only for the person it was sent to, with the write key.
    for path, user, expected in ((f"{base}/click", "someone-else", 404),
                                 (f"{base}/click", "nobody-at-all", 404),
                                 (f"/v1/inapp/{uuid.uuid4()}/impression", "app-user", 404)):
        assert (await workspace.tracking.post(path, **await signed_in(workspace, user))).status_code == expected, path
    assert (await workspace.tracking.post(f"{base}/click", headers=app_user["headers"])).status_code == 422
    assert (await workspace.admin.post(f"{base}/click", **app_user)).status_code == 401

    impression, click = await engagement_events(redis, workspace.id, 2)
    assert (impression.type, impression.payload["link_id"], impression.payload["url"]) == (
        "engagement.impression", None, None)
    assert (click.type, click.payload["link_id"], click.payload["channel"], click.profile_id) == (
        "engagement.inapp_clicked", 0, "inapp", profile)
    assert click.payload["url"] == "https://shop.kr/new?utm_source=nudge&utm_medium=inapp&utm_campaign=direct"
    assert click.payload["utm"] == {"source": "nudge", "medium": "inapp", "campaign": "direct"}
    assert len(await facts(dispatch_platform, workspace.id)) == 2


async def test_a_retried_call_with_the_same_request_id_records_once(workspace, dispatch_platform, redis):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile, delivery = await newsletter(workspace, dispatch_platform, smtp)
    app_user = await person(workspace, "app-retry")
    await configure(workspace, {"inapp": {"title": "Hi", "body": "b"}})
    shown = await send(workspace, app_user, ["inapp"])
    token = dispatch_platform.service.tokens.click(workspace.id, delivery["id"], 1)
    click_id, impression_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with grpc.aio.insecure_channel(dispatch_platform.address) as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        replies = [await stub.RecordEngagement(dispatch_pb2.RecordEngagementRequest(
            token=token, kind="click", user_agent=BROWSER, request_id=click_id)) for _ in range(2)]
        inapp = [await stub.RecordInAppEngagement(dispatch_pb2.RecordInAppEngagementRequest(
            context=common_pb2.RequestContext(workspace_id=workspace.id), delivery_id=shown["id"],
            profile_id=app_user, kind="impression", request_id=impression_id)) for _ in range(2)]
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.RecordEngagement(dispatch_pb2.RecordEngagementRequest(token=token, kind="click",
                                                                             request_id="not-a-uuid"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(r.recorded, r.url, r.delivery_id) for r in replies] == [(True, OWN_UTM, delivery["id"]),
                                                                     (False, OWN_UTM, delivery["id"])]
    assert [r.recorded for r in inapp] == [True, False]
    events = await engagement_events(redis, workspace.id, 2)
    assert sorted(e.payload["fact_id"] for e in events) == sorted([click_id, impression_id])
    assert sorted(r.id for r in await facts(dispatch_platform, workspace.id)) == sorted([click_id, impression_id])


async def test_a_simulated_send_stores_no_links(workspace, dispatch_platform):
    from datetime import datetime, timezone

    await configure(workspace, {"sms": {"text": "주문 확인 https://shop.kr/o/1"}},
                    {"sms": ("nhn_sms", {"app_key": "a", "secret_key": "s", "send_no": "15880000",
                                         "endpoint": "http://127.0.0.1:9"})})
    run = Simulation("sim-links", datetime(2026, 3, 2, 5, tzinfo=timezone.utc), '{"traits": {"phone": "01012345678"}}')
    outcome = await dispatch_platform.service.simulate(workspace.id, SendSpec("", "", ["sms"], "hello"), run)
    assert outcome["status"] == "sent"
    async with dispatch_platform.service.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(deliveries)
                                      .where(deliveries.c.workspace_id == workspace.id))
    assert stored == 0 and await facts(dispatch_platform, workspace.id) == []
