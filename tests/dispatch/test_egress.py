"""Server-side request forgery: every address a send connects to passes the egress guard.
Through the public API of a deployment whose operator allows no internal address (but one
partner port), a hostile address never gets a connection (a local listener counts them)
and each refusal is recorded: a 4xx naming the field at save, the delivery's reason at send,
a log line."""

import pytest
from starlette.responses import RedirectResponse
from structlog.testing import capture_logs

from services.dispatch.egress import Allowance, EgressGuard, kind_of, ip_of
from services.dispatch.settings import DispatchSettings
from tests.support.api import person, send
from tests.support.api import setup as configure
from tests.support.channels import SMS_CONFIG, webpush_setup
from tests.support.listener import CountingListener

HELLO = {"webhook": {"body": {"text": "hi"}}, "email": {"subject": "hi", "text": "hi"},
         "webpush": {"title": "hi", "body": "hi"}}


@pytest.fixture
async def listener():
    async with CountingListener() as counting:
        yield counting


@pytest.fixture
def partner(guarded):
    """The one endpoint the guarded deployment's operator allows, as it was before the test."""
    handle = guarded.partner.handle
    yield guarded.partner
    guarded.partner.handle = handle
    guarded.partner.requests.clear()


async def refused_send(ws, profile: str, channel: str) -> tuple[dict, list[dict]]:
    """The send of `channel`, failed, and the egress refusals logged while it ran."""
    with capture_logs() as logs:
        delivery = await send(ws, profile, [channel])
    assert delivery["status"] == "failed", delivery
    return delivery, [entry for entry in logs if entry["event"] == "egress refused"]


async def test_a_web_push_subscription_set_with_the_write_key_never_reaches_loopback(through, listener):
    """The issue's probe: an identify with the public write key names an internal endpoint."""
    endpoints = {"http": f"http://127.0.0.1:{listener.port}/push", "https": f"https://127.0.0.1:{listener.port}/push",
                 "name": f"https://localhost:{listener.port}/push"}  # a DNS name resolving to loopback
    reasons = {}
    for case, endpoint in endpoints.items():
        subscription, config = webpush_setup(endpoint)
        profile = await person(through, f"browser-{case}", {"webpush_subscription": subscription})
        await configure(through, HELLO, {"webpush": config})
        delivery, logged = await refused_send(through, profile, "webpush")
        [attempt] = delivery["attempts"]
        assert attempt["outcome"] == "unreachable"  # the subscription will never do: the next channel may
        reasons[case] = (attempt["reason"], [entry["address"] for entry in logged])
    assert reasons == {
        "http": ("egress refused: the push endpoint on 127.0.0.1 is not https", []),
        "https": ("egress refused: 127.0.0.1 is loopback", ["127.0.0.1"]),
        "name": ("egress refused: localhost resolves to 127.0.0.1, which is loopback", ["127.0.0.1"])}
    assert listener.connections == 0


@pytest.mark.parametrize("channel, provider, config, field", [
    ("email", "smtp", {"host": "127.0.0.1", "sender": "news@shop.kr"}, "config.host"),
    ("email", "smtp", {"host": "localhost", "sender": "news@shop.kr"}, "config.host"),
    ("webhook", "webhook", {"url": "http://127.0.0.1:{port}/hook", "secret": "s", "allowed_hosts": ["127.0.0.1"]},
     "config.allowed_hosts"),
    ("webhook", "webhook", {"url": "http://localhost:{port}/hook", "secret": "s"}, "config.url"),
    ("sms", "nhn_sms", {**SMS_CONFIG, "endpoint": "http://127.0.0.1:{port}"}, "config.endpoint"),
    ("sms", "nhn_sms", {**SMS_CONFIG, "media_allowed_hosts": ["cdn.shop.kr", "10.0.0.7"]},
     "config.media_allowed_hosts"),
])
async def test_a_channel_naming_an_internal_address_is_refused_at_save(through, listener, channel, provider,
                                                                       config, field):
    config = {k: v.format(port=listener.port) if isinstance(v, str) else v for k, v in config.items()}
    if provider == "smtp":
        config["port"] = listener.port
    response = await through.admin.put(f"/v1/channels/{channel}", json={"provider": provider, "config": config})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: egress refused: ")
    assert (await through.admin.get("/v1/channels")).json()["channels"] == []
    assert listener.connections == 0


async def test_an_smtp_host_and_allowed_hosts_on_loopback_are_refused_at_send(workspace, through, listener):
    """Saved where the operator allowed loopback (the main gateway), sent where it does not: each
    send checks again, so a narrowed allowance holds for configurations saved before."""
    profile = await person(workspace, "mailed", {"email": "kim@example.kr"})
    await configure(workspace, HELLO, {
        "email": ("smtp", {"host": "127.0.0.1", "port": listener.port, "sender": "news@shop.kr"}),
        "webhook": ("webhook", {"url": f"http://127.0.0.1:{listener.port}/hook", "secret": "s",
                                "allowed_hosts": ["127.0.0.1"]})})
    email, email_logged = await refused_send(through, profile, "email")
    webhook, webhook_logged = await refused_send(through, profile, "webhook")
    assert email["reason"] == "email: egress refused: 127.0.0.1 is loopback"
    assert webhook["reason"] == ("webhook: egress refused: 127.0.0.1 is loopback (config.allowed_hosts may "
                                 "only narrow where sends go)")
    assert [e["address"] for e in email_logged + webhook_logged] == ["127.0.0.1", "127.0.0.1"]
    assert listener.connections == 0


async def test_a_redirect_to_loopback_is_refused_after_the_allowed_first_hop(partner, through, listener):
    hops = []

    async def redirect(request):
        hops.append(request.url.path)
        return RedirectResponse(f"http://127.0.0.1:{listener.port}/hook", status_code=307)
    partner.handle = redirect
    profile = await person(through, "redirected")
    # The partner's address and port are the operator's exception: saved, and the first hop goes.
    await configure(through, HELLO, {"webhook": ("webhook", {"url": partner.url, "secret": "s"})})
    delivery, logged = await refused_send(through, profile, "webhook")
    assert delivery["reason"] == "webhook: egress refused: 127.0.0.1 is loopback"
    assert hops == ["/hook"] and [(e["address"], e["port"]) for e in logged] == [("127.0.0.1", listener.port)]
    assert listener.connections == 0


async def test_an_mms_image_on_a_name_resolving_to_loopback_is_never_fetched(partner, through, listener):
    profile = await person(through, "mms", {"phone": "010-1234-5678"})
    await configure(through, {"sms": {"text": "new in", "title": "new",
                                      "media_urls": [f"http://localhost:{listener.port}/shirt.jpg"]}},
                    {"sms": ("nhn_sms", {**SMS_CONFIG, "endpoint": partner.url.removesuffix("/hook")})})
    delivery, logged = await refused_send(through, profile, "sms")
    assert delivery["reason"] == (f"sms: egress refused: MMS image http://localhost:{listener.port}/shirt.jpg: "
                                  "localhost resolves to 127.0.0.1, which is loopback")
    assert [e["host"] for e in logged] == ["localhost"]
    assert listener.connections == 0 and partner.requests == []  # nothing was sent either


# ---- the guard's rules --------------------------------------------------------------------------

@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("10.0.0.7", "private"),
    ("192.168.1.1", "private"), ("fd12::1", "private"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"), ("100.64.0.1", "not a public address"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
    ("8.8.8.8", None), ("2001:4860:4860::8888", None),
])
def test_each_internal_kind_of_address_is_named(address, kind):
    assert kind_of(ip_of(address)) == kind


def test_the_operator_allowance_names_addresses_networks_and_ports_but_never_metadata():
    allowance = Allowance.parse("10.1.0.0/16, 127.0.0.1:2525, [::1]:8025, 169.254.0.0/16")
    assert allowance.permits(ip_of("10.1.2.3"), 443) and allowance.permits(ip_of("10.1.2.3"), None)
    assert allowance.permits(ip_of("127.0.0.1"), 2525) and not allowance.permits(ip_of("127.0.0.1"), 25)
    assert not allowance.permits(ip_of("127.0.0.1"), None)  # a port entry does not allow every port
    assert allowance.permits(ip_of("::1"), 8025) and allowance.permits(ip_of("169.254.1.1"), 80)
    assert not allowance.permits(ip_of("169.254.169.254"), 80)
    for bad in ("localhost", "10.0.0.0/33", "127.0.0.1:0", "[::1]8025"):
        with pytest.raises(ValueError, match="egress_allow"):
            Allowance.parse(bad)


async def test_a_bad_allowance_fails_the_start_and_the_guard_checks_every_answer(monkeypatch):
    monkeypatch.setenv("NUDGE_EGRESS_ALLOW", "127.0.0.1:http")
    with pytest.raises(ValueError, match="egress_allow"):
        DispatchSettings()

    async def split(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]  # one public answer, one internal: refused
    with pytest.raises(Exception, match="shop.example resolves to 10.0.0.7, which is private"):
        await EgressGuard(resolve=split).addresses("shop.example", 443)
