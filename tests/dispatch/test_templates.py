"""Templates: what is refused when saved (with the field), what each channel renders, the
advertising notices the law asks for, SMS vs LMS vs MMS in EUC-KR bytes, and the sandbox
against the known escape payloads."""

import pytest

from kit.errors import InvalidArgument
from services.dispatch import templates
from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, INAPP, PUSH, SMS, WEBHOOK, WEBPUSH,
                                        Content)
from services.dispatch.templates import RenderError, euc_kr_length, render, validate_template

KIM = {"profile": {"name": "김민지", "tier": "VIP", "items": 3},
       "event": {"product": "린넨 셔츠", "amount": 39000, "url": "https://shop.kr/p/7"},
       "journey": {"coupon": "SPRING20"}}
OPT_OUT = {"phone": "080-123-4567", "url": "https://shop.kr/unsubscribe?u=7"}


def send(channel: str, fields: dict, advertising: bool = False, variables: dict = KIM) -> Content:
    return render(channel, fields, variables, advertising=advertising, sender_name="너지샵", opt_out=OPT_OUT)


def refused(channel: str, fields, path: str = "fields") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        validate_template(channel, fields, path=path)
    return caught.value


# -- save time ------------------------------------------------------------------------------------
def test_a_template_with_the_channels_fields_is_saved_as_given():
    fields = {"subject": "{{ profile.name }}님, 쿠폰 {{ journey.coupon }}", "text": "{{ event.amount | won }}",
              "html": "<p>{% for i in [1, 2] %}{{ loop.index }}{% endfor %} {{ comma(event.amount) }}</p>"}
    assert validate_template(EMAIL, fields) == fields
    assert validate_template(WEBHOOK, {"body": {"order": {"total": "{{ event.amount }}", "n": 1, "tags": ["a"]}}})
    assert validate_template(ALIMTALK, {"template_code": "ORDER_SHIPPED", "variables": {"이름": "{{ profile.name }}"},
                                        "buttons": [{"name": "배송조회", "type": "WL", "url": "{{ event.url }}"}]})


@pytest.mark.parametrize("channel, fields, field", [
    (SMS, {}, "channels.sms.text"),
    (SMS, {"text": "hi", "subject": "x"}, "channels.sms.subject"),
    (EMAIL, {"subject": "s"}, "channels.email.text"),
    (PUSH, {"title": "t", "body": 3}, "channels.push.body"),
    (SMS, {"text": "hi", "media_urls": ["a", "b", "c", "d"]}, "channels.sms.media_urls"),
    (FRIENDTALK, {"text": "hi", "buttons": [{"type": "WL"}]}, "channels.friendtalk.buttons[0]"),
    (ALIMTALK, {"template_code": "T1", "variables": {"n": 1}}, "channels.alimtalk.variables"),
    (ALIMTALK, {"variables": {"n": "x"}}, "channels.alimtalk.template_code"),
    (WEBHOOK, {"body": ["not", "an", "object"]}, "channels.webhook.body"),
    (SMS, "text", "channels.sms"),
])
def test_missing_extra_or_mistyped_fields_are_refused_with_the_field(channel, fields, field):
    assert refused(channel, fields, path=f"channels.{channel}").field == field


def test_an_unknown_channel_is_refused():
    assert refused("fax", {"text": "hi"}, path="channels.fax").field == "channels.fax"


def test_an_unknown_variable_is_refused_when_saved_naming_field_and_variable():
    error = refused(SMS, {"text": "안녕 {{ profile.name }}, {{ secret }}"})
    assert error.field == "fields.text" and "'secret'" in error.message
    error = refused(WEBHOOK, {"body": {"a": {"b": "{{ user.id }}"}}})
    assert error.field == "fields.body.a.b" and "'user'" in error.message
    error = refused(FRIENDTALK, {"text": "hi", "buttons": [{"name": "go", "url": "{{ page }}"}]})
    assert error.field == "fields.buttons[0].url"


def test_syntax_errors_unknown_filters_and_oversized_templates_are_refused():
    assert "template error on line 1" in refused(SMS, {"text": "{{ profile.name "}).message
    assert refused(SMS, {"text": "{{ profile.name | center(9) }}"}).field == "fields.text"
    too_big = "가" * (templates.MAX_TEMPLATE_CHARS + 1)
    assert refused(EMAIL, {"subject": "s", "text": "t", "html": too_big}).field == "fields"


# -- rendering per channel ------------------------------------------------------------------------
def test_informational_sms_is_rendered_without_notices():
    content = send(SMS, {"text": "{{ profile.name }}님, 주문하신 {{ event.product }} 발송되었습니다"})
    assert content == Content(body="김민지님, 주문하신 린넨 셔츠 발송되었습니다", sms_type="SMS")


def test_advertising_sms_starts_with_the_notice_and_sender_and_ends_with_the_free_opt_out():
    content = send(SMS, {"text": "봄 세일 {{ event.amount | won }}"}, advertising=True)
    assert content.body == "(광고)너지샵\n봄 세일 39,000원\n무료수신거부 080-123-4567"


def test_sms_becomes_lms_over_90_euc_kr_bytes_counted_after_the_notices():
    assert send(SMS, {"text": "가" * 45, "title": "제목"}) == Content(body="가" * 45, sms_type="SMS")  # 90 bytes
    lms = send(SMS, {"text": "가" * 45 + "a", "title": "{{ profile.name }}님께"})
    assert (lms.sms_type, lms.subject) == ("LMS", "김민지님께")
    # (광고)너지샵\n = 13 bytes, \n무료수신거부 080-123-4567 = 26: 51 bytes of text still fit.
    assert send(SMS, {"text": "a" * 51}, advertising=True).sms_type == "SMS"
    assert send(SMS, {"text": "a" * 52}, advertising=True).sms_type == "LMS"
    assert send(SMS, {"text": "가" * 1000}).sms_type == "LMS"
    with pytest.raises(RenderError, match="too long for LMS"):
        send(SMS, {"text": "가" * 1000 + "a"})
    mms = send(SMS, {"text": "hi", "media_urls": ["https://cdn.kr/{{ event.product }}.jpg"]})
    assert (mms.sms_type, mms.media_urls) == ("MMS", ("https://cdn.kr/린넨 셔츠.jpg",))


def test_euc_kr_length_counts_characters_it_cannot_encode_as_two_bytes():
    assert euc_kr_length("a가") == 3
    assert euc_kr_length("똠") == 2 and euc_kr_length("🎉a") == 3  # 똠 is outside KS X 1001
    assert euc_kr_length("₩★\n") == 5


def test_email_advertising_marks_the_subject_and_adds_an_unsubscribe_footer_to_both_parts():
    fields = {"subject": "{{ profile.name }}님 전용 쿠폰", "text": "쿠폰 {{ journey.coupon }}",
              "html": "<html><body><p>{{ profile.name }}</p></body></html>"}
    plain = send(EMAIL, fields)
    assert (plain.subject, plain.body, plain.data) == ("김민지님 전용 쿠폰", "쿠폰 SPRING20", {})
    assert "수신거부" not in plain.html
    ad = send(EMAIL, fields, advertising=True)
    assert ad.subject == "(광고) 김민지님 전용 쿠폰"
    assert ad.body.startswith("쿠폰 SPRING20\n\n") and ad.body.endswith(f"너지샵 | 수신거부(unsubscribe): {OPT_OUT['url']}")
    assert ad.html.endswith('<a href="https://shop.kr/unsubscribe?u=7">수신거부(unsubscribe)</a></p></body></html>')
    assert ad.data == {"unsubscribe_url": OPT_OUT["url"]}  # the List-Unsubscribe header


def test_html_escapes_profile_values_and_text_does_not():
    fields = {"subject": "{{ profile.name }}", "text": "{{ profile.name }}", "html": "<b>{{ profile.name }}</b>"}
    content = send(EMAIL, fields, variables={"profile": {"name": "<script>x</script>"}})
    assert content.html == "<b>&lt;script&gt;x&lt;/script&gt;</b>" and content.body == "<script>x</script>"


def test_friendtalk_carries_notices_buttons_and_image():
    content = send(FRIENDTALK, {"text": "{{ event.product }} 20% 할인", "image_url": "https://img.kr/a.jpg",
                                "buttons": [{"name": "보러가기", "type": "WL", "url": "{{ event.url }}"}]},
                   advertising=True)
    assert content == Content(body="(광고)너지샵\n린넨 셔츠 20% 할인\n무료수신거부 080-123-4567",
                              media_urls=("https://img.kr/a.jpg",),
                              buttons=({"name": "보러가기", "type": "WL", "url": "https://shop.kr/p/7"},))


@pytest.mark.parametrize("channel", [PUSH, WEBPUSH, INAPP])
def test_notifications_put_the_notice_before_the_body(channel):
    fields = {"title": "{{ profile.name }}님", "body": "쿠폰 도착", "url": "{{ event.url }}"}
    assert send(channel, fields) == Content(subject="김민지님", body="쿠폰 도착", url="https://shop.kr/p/7")
    ad = send(channel, fields, advertising=True)
    assert (ad.subject, ad.body) == ("김민지님", "(광고)너지샵 쿠폰 도착 (수신거부: 앱 설정 > 알림)")
    own = render(channel, fields, KIM, advertising=True, sender_name="너지샵", opt_out={**OPT_OUT, "app": "마이 > 알림 끄기"})
    assert own.body == "(광고)너지샵 쿠폰 도착 (마이 > 알림 끄기)"  # the workspace's own path (policy.opt_out_app)


def test_push_data_and_webhook_body_keep_their_structure():
    push = send(PUSH, {"title": "t", "body": "b", "data": {"coupon": "{{ journey.coupon }}", "n": 2}})
    assert push.data == {"coupon": "SPRING20", "n": 2}
    hook = send(WEBHOOK, {"body": {"total": "{{ event.amount }}", "lines": [{"sku": "{{ event.product }}"}],
                                   "paid": True, "note": None}})
    assert hook.data == {"total": "39000", "lines": [{"sku": "린넨 셔츠"}], "paid": True, "note": None}


def test_alimtalk_renders_its_variables_and_refuses_advertising():
    fields = {"template_code": "ORDER_SHIPPED",
              "variables": {"고객명": "{{ profile.name }}", "금액": "{{ won(event.amount) }}"},
              "buttons": [{"name": "배송조회", "type": "WL", "url": "{{ event.url }}"}]}
    content = send(ALIMTALK, fields)
    assert content.template_code == "ORDER_SHIPPED" and content.variables == {"고객명": "김민지", "금액": "39,000원"}
    assert content.buttons == ({"name": "배송조회", "type": "WL", "url": "https://shop.kr/p/7"},)
    with pytest.raises(InvalidArgument, match="informational messages only"):
        send(ALIMTALK, fields, advertising=True)


def test_a_missing_variable_names_the_field_and_the_variable():
    with pytest.raises(RenderError) as caught:
        send(WEBHOOK, {"body": {"text": "hi {{ profile.nickname }}"}})
    assert (caught.value.field, caught.value.variable) == ("body.text", "profile.nickname")
    assert "profile.nickname" in str(caught.value)
    # An absent namespace is empty, and default() covers what a person may lack.
    assert send(SMS, {"text": "{{ profile.nickname | default('고객') }}님"}, variables={}).body == "고객님"


def test_advertising_without_what_the_law_asks_is_not_rendered():
    fields = {"text": "세일"}
    for sender, opt_out, field in [("", OPT_OUT, "policy.sender_name"),
                                   ("너지샵", {"url": OPT_OUT["url"]}, "policy.opt_out_phone"),
                                   ("너지샵", {"phone": "02-123-4567"}, "policy.opt_out_phone")]:
        with pytest.raises(RenderError) as caught:
            render(SMS, fields, KIM, advertising=True, sender_name=sender, opt_out=opt_out)
        assert caught.value.field == field
    with pytest.raises(RenderError) as caught:
        render(EMAIL, {"subject": "s", "text": "t"}, KIM, advertising=True, sender_name="너지샵", opt_out={})
    assert caught.value.field == "policy.unsubscribe_url"


def test_helpers_format_numbers_for_korean_readers():
    assert templates.comma(1234567) == "1,234,567" and templates.comma("39000") == "39,000"
    assert templates.comma(1234.5) == "1,234.5" and templates.won(5000.0) == "5,000원"
    assert templates.comma("많이") == "많이" and templates.comma("1e999999999") == "1e999999999"


def test_a_trait_named_like_a_dict_method_is_the_trait():
    assert send(SMS, {"text": "{{ profile.items }}개"}).body == "3개"


# -- sandbox ---------------------------------------------------------------------------------------
# Refused when saved (names outside the namespaces, "_" attributes, unknown filters, include)
# and, if rendered anyway, a render error.
STATIC_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config }}",
    "{{ request }}",
    "{{ lipsum.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{% for i in range(999999999) %}{% endfor %}",
    "{{ profile.__class__.__base__.__subclasses__() }}",
    "{{ profile['__class__'] }}",
    "{{ event.product.__class__ }}",
    "{{ event.product | attr('__class__') }}",
    "{{ '' | center(999999999) }}",
    "{% include 'x' %}",
]
# Well-formed, so saved; the sandbox stops them when rendered.
RUNTIME_PAYLOADS = [
    "{{ '{0.__class__}'.format(profile) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(event) }}",
    "{{ '{x.__class__}'.format_map({'x': profile}) }}",
    "{{ event.product['format']('{0.__class__}', 1) }}",
    "{{ profile.update({'name': 'x'}) }}",
    "{{ profile.items() }}",
    "{{ profile.pop('name') }}",
    "{{ 'x' * 1000000000 }}",
    "{{ 2 ** 100000000 }}",
    "{{ '%999999999s' % 1 }}",
    "{{ event.product.ljust(999999999) }}",
]


def render_error(payload: str) -> RenderError:
    with pytest.raises(RenderError) as caught:
        send(SMS, {"text": payload}, variables={"profile": {"name": "김민지"}, "event": {"product": "셔츠"}})
    assert caught.value.field == "text" and "<class" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize("payload", STATIC_PAYLOADS)
def test_sandbox_escapes_are_refused_when_saved_and_fail_when_rendered(payload):
    assert refused(SMS, {"text": payload}).field == "fields.text"
    render_error(payload)


@pytest.mark.parametrize("payload", RUNTIME_PAYLOADS)
def test_sandbox_escapes_that_parse_fail_when_rendered_and_leak_nothing(payload):
    validate_template(SMS, {"text": payload})
    render_error(payload)


def test_profile_data_is_never_run_as_a_template():
    content = send(SMS, {"text": "{{ profile.name }}"}, variables={"profile": {"name": "{{ ''.__class__ }}"}})
    assert content.body == "{{ ''.__class__ }}"
