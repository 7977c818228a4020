"""Through the gateway at a set Korean time: the night rule spares e-mail as the enforcement
decree has it (a policy setting that can apply it to e-mail too), and a channel that must
wait does not hold up the next one unless the send says `order: "strict"`."""

from datetime import datetime, time, timedelta

from tests.dispatch import provider_servers as fake
from tests.support.api import consent, person, send
from tests.support.api import setup as configure
from tests.support.channels import AD_POLICY, EMAIL_TEMPLATE, KST, at, kakao_config, sms_config, smtp_config


def today_at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(datetime.now(KST).date(), time(hour, minute), KST)


def tomorrow_at_eight() -> datetime:
    return datetime.combine(datetime.now(KST).date() + timedelta(days=1), time(8), KST)


async def test_advertising_email_at_half_past_ten_is_sent_as_the_decree_exempts_email(workspace, dispatch_clock):
    dispatch_clock.set(today_at(22, 30))
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "night-mail", {"name": "Kim", "email": "kim@example.kr"})
        await consent(workspace, profile, email=True, advertising=True)  # no night-time consent
        await configure(workspace, {"email": EMAIL_TEMPLATE}, {"email": smtp_config(smtp)}, policy=AD_POLICY)
        delivery = await send(workspace, profile, ["email"], advertising=True, transactional=False)
    assert (delivery["status"], delivery["channel"], delivery["rule"]) == ("sent", "email", None)
    [mail] = smtp.mail
    assert mail.message["Subject"] == "(광고) Kim님, 봄 세일"
    policy = (await workspace.admin.get("/v1/dispatch-policy")).json()
    assert "night_rule" not in policy  # nothing set: the law's default applies


async def test_the_night_rule_can_be_applied_to_email_by_policy(workspace, dispatch_clock):
    dispatch_clock.set(today_at(22, 30))
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "night-mail-strict", {"name": "Kim", "email": "kim@example.kr"})
        await consent(workspace, profile, email=True, advertising=True)
        await configure(workspace, {"email": EMAIL_TEMPLATE}, {"email": smtp_config(smtp)},
                        policy={**AD_POLICY, "night_rule": {"exempt": []}})
        delivery = await send(workspace, profile, ["email"], advertising=True, transactional=False)
        assert (delivery["status"], delivery["rule"]) == ("deferred", "night_rule")
        assert at(delivery["deferredUntil"]) == tomorrow_at_eight()
        # Informational mail is not advertising: the night rule never holds it.
        info = await send(workspace, profile, ["email"])
        assert info["status"] == "sent"
    assert len(smtp.mail) == 1
    assert (await workspace.admin.get("/v1/dispatch-policy")).json()["night_rule"] == {"exempt": []}


async def test_a_bad_night_rule_setting_is_refused_with_its_field(workspace):
    for night_rule, field in (({"exempt": ["fax"]}, "policy.night_rule.exempt[0]"),
                              ({"exempt": "email"}, "policy.night_rule.exempt"),
                              ({"channels": []}, "policy.night_rule.channels"),
                              ([], "policy.night_rule")):
        response = await workspace.admin.put("/v1/dispatch-policy", json={"night_rule": night_rule})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == field
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == {}


FRIENDTALK_OR_SMS = {"friendtalk": {"text": "{{ profile.name }}님, 봄 신상품 20% 할인"},
                     "sms": {"text": "{{ profile.name }}님, 봄 신상품 20% 할인"}}


async def _evening_ad(workspace, dispatch_clock, user: str, **extra):
    dispatch_clock.set(today_at(20, 30))  # Kakao's ad window has closed; the night rule has not begun
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as kakao, \
            fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, user, {"name": "김민수", "phone": "010-1234-5678"})
        await consent(workspace, profile, kakao=True, sms=True, advertising=True)
        await configure(workspace, FRIENDTALK_OR_SMS, {"friendtalk": kakao_config(kakao.url), "sms": sms_config(nhn)},
                        policy=AD_POLICY)
        delivery = await send(workspace, profile, ["friendtalk", "sms"], advertising=True, transactional=False,
                              **extra)
    return delivery, kakao.received, nhn.received


async def test_friendtalk_then_sms_ad_at_half_past_eight_goes_by_sms_now(workspace, dispatch_clock):
    delivery, kakao, sms = await _evening_ad(workspace, dispatch_clock, "evening-first-allowed")
    assert (delivery["status"], delivery["channel"]) == ("sent", "sms")
    assert [(a["channel"], a["outcome"]) for a in delivery["attempts"]] == [("friendtalk", "deferred"),
                                                                            ("sms", "sent")]
    assert kakao == [] and [r.json()["body"] for r in sms] == ["(광고)넛지샵\n김민수님, 봄 신상품 20% 할인\n무료수신거부 080-123-4567"]


async def test_strict_order_waits_for_friendtalk_at_eight(workspace, dispatch_clock):
    delivery, kakao, sms = await _evening_ad(workspace, dispatch_clock, "evening-strict", order="strict")
    assert (delivery["status"], delivery["channel"], delivery["rule"]) == ("deferred", "friendtalk", "kakao_ad_window")
    assert at(delivery["deferredUntil"]) == tomorrow_at_eight()
    assert [(a["channel"], a["outcome"]) for a in delivery["attempts"]] == [("friendtalk", "deferred")]
    assert kakao == [] and sms == []


async def test_an_unknown_order_is_refused_with_its_field(workspace):
    profile = await person(workspace, "bad-order")
    await configure(workspace, {"sms": {"text": "hi"}})
    response = await workspace.admin.post("/v1/messages", headers={"Idempotency-Key": "k-bad-order"},
                                          json={"profileId": profile, "channels": ["sms"], "templateId": "hello",
                                                "order": "random"})
    assert response.status_code == 422, response.text
    assert "order" in str(response.json()["error"]["details"])


async def test_when_every_channel_must_wait_the_send_waits_for_the_earliest(workspace, dispatch_clock):
    # 20:30 with quiet hours 20:00–07:00: FriendTalk may send an ad again at 08:00 (Kakao's window),
    # e-mail (spared by the night rule) at 07:00; the send waits for e-mail, though listed second.
    dispatch_clock.set(today_at(20, 30))
    with fake.SmtpProvider("mailer", "pw") as smtp:
        async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as kakao:
            profile = await person(workspace, "evening-earliest", {"name": "김민수", "phone": "010-1234-5678",
                                                                   "email": "kim@example.kr"})
            await consent(workspace, profile, kakao=True, email=True, advertising=True)
            await configure(workspace, {"friendtalk": FRIENDTALK_OR_SMS["friendtalk"], "email": EMAIL_TEMPLATE},
                            {"friendtalk": kakao_config(kakao.url), "email": smtp_config(smtp)},
                            policy={**AD_POLICY, "quiet_hours": {"start": "20:00", "end": "07:00"}})
            delivery = await send(workspace, profile, ["friendtalk", "email"], advertising=True, transactional=False)
    assert (delivery["status"], delivery["channel"], delivery["rule"]) == ("deferred", "email", "quiet_hours")
    assert at(delivery["deferredUntil"]) == tomorrow_at_eight() - timedelta(hours=1)
    assert [(a["channel"], a["outcome"]) for a in delivery["attempts"]] == [("friendtalk", "deferred"),
                                                                            ("email", "deferred")]
    assert kakao.received == [] and smtp.mail == []
