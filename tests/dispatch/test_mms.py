"""MMS through NHN Cloud SMS: each image of `media_urls` is fetched (through the egress guard,
from the channel's `media_allowed_hosts` when it lists any), uploaded with the attachment API,
and the MMS carries the uploaded file ids."""

from starlette.responses import Response

from tests.dispatch import provider_servers as fake
from tests.support.api import person, send
from tests.support.api import setup as configure
from tests.support.channels import SMS_CONFIG

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


def images(got: fake.Received) -> Response:
    """A CDN: /linen-shirt.jpg is a JPEG, /moved.jpg redirects to it, /logo.png is a PNG."""
    if got.path == "/moved.jpg":
        return Response(status_code=302, headers={"location": "/linen-shirt.jpg"})
    if got.path == "/linen-shirt.jpg":
        return Response(JPEG, media_type="image/jpeg")
    if got.path == "/logo.png":
        return Response(b"\x89PNG\r\n\x1a\n" + bytes(64), media_type="image/png")
    return Response(status_code=404)


def mms_template(cdn) -> dict:
    return {"sms": {"text": "{{ profile.name }}님, 새로 들어온 린넨 셔츠를 만나보세요.", "title": "신상품",
                    "media_urls": [f"{cdn.url}/{{{{ event.image }}}}"]}}


async def test_an_mms_image_is_uploaded_to_nhn_and_sent_by_its_file_id(workspace):
    files: dict = {}
    async with fake.HttpProvider(images) as cdn, fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret",
                                                                                 files)) as nhn:
        profile = await person(workspace, "mms", {"name": "김민수", "phone": "010-1234-5678"})
        await configure(workspace, mms_template(cdn), {"sms": ("nhn_sms", {
            **SMS_CONFIG, "endpoint": nhn.url, "media_allowed_hosts": ["127.0.0.1"]})})
        delivery = await send(workspace, profile, ["sms"], variables={"event": {"image": "moved.jpg"}})
    assert delivery["status"] == "sent", delivery
    upload, sent = nhn.received
    assert upload.path == "/sms/v3.0/appKeys/sms-app/attachfile/binaryUpload"
    assert upload.headers["x-secret-key"] == "sms-secret"
    [(file_id, (name, image))] = files.items()
    assert (name, image) == ("linen-shirt.jpg", JPEG)  # the redirect followed, the bytes as served
    assert sent.path == "/sms/v3.0/appKeys/sms-app/sender/mms"
    assert sent.json() == {"body": "김민수님, 새로 들어온 린넨 셔츠를 만나보세요.", "sendNo": "15880000", "title": "신상품",
                           "attachFileIdList": [file_id],
                           "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": delivery["id"]}]}


async def test_an_mms_image_off_the_allowed_hosts_or_not_a_jpeg_is_refused_and_nothing_is_sent(workspace):
    async with fake.HttpProvider(images) as cdn, fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "mms-refused", {"name": "김민수", "phone": "010-1234-5678"})
        # The workspace takes images from its CDN only: 127.0.0.1 is not it.
        await configure(workspace, mms_template(cdn), {"sms": ("nhn_sms", {
            **SMS_CONFIG, "endpoint": nhn.url, "media_allowed_hosts": ["cdn.shop.kr"]})})
        elsewhere = await send(workspace, profile, ["sms"], variables={"event": {"image": "linen-shirt.jpg"}})
        await configure(workspace, mms_template(cdn), {"sms": ("nhn_sms", {
            **SMS_CONFIG, "endpoint": nhn.url, "media_allowed_hosts": ["127.0.0.1"]})})
        png = await send(workspace, profile, ["sms"], variables={"event": {"image": "logo.png"}})
    assert elsewhere["status"] == "failed" and "127.0.0.1 is not in config.media_allowed_hosts" in elsewhere["reason"]
    assert png["status"] == "failed" and "not a JPEG" in png["reason"]
    assert nhn.received == [] and len(cdn.received) == 1  # the image off the list was never fetched


async def test_media_allowed_hosts_must_be_a_list_of_names(workspace):
    response = await workspace.admin.put("/v1/channels/sms", json={"provider": "nhn_sms", "config": {
        **SMS_CONFIG, "media_allowed_hosts": "cdn.shop.kr"}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "config.media_allowed_hosts"
