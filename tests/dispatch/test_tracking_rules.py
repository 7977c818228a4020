"""The pure rules behind tracked links: signed tokens that no changed character gets past,
which URLs are rewritten and where a URL in text ends, the UTM parameters, machine opens,
and what rendering a message with tracking produces."""

import base64
import uuid

import pytest

from kit.errors import InvalidArgument
from services.dispatch.channels import EMAIL, FRIENDTALK, PUSH, SMS
from services.dispatch.engagement import is_machine
from services.dispatch.links import Links, check_utm, rewrite_html, rewrite_text, utm_for, utm_of, with_utm
from services.dispatch.templates import render
from services.dispatch.tokens import Claim, Tokens

TOKENS = Tokens(b"k" * 32)
DELIVERY = str(uuid.uuid4())


def test_a_token_says_what_it_was_signed_for():
    assert TOKENS.verify(TOKENS.click("shop-1a2b3c", DELIVERY, 7)) == Claim("click", "shop-1a2b3c", DELIVERY, 7)
    assert TOKENS.verify(TOKENS.open("shop-1a2b3c", DELIVERY)) == Claim("open", "shop-1a2b3c", DELIVERY)
    assert TOKENS.verify(TOKENS.unsubscribe("shop-1a2b3c", DELIVERY, "advertising")) == Claim(
        "unsubscribe", "shop-1a2b3c", DELIVERY, category="advertising")
    token = TOKENS.click("shop-1a2b3c", DELIVERY, 0)
    assert token.replace("-", "").replace("_", "").isalnum() and len(token) < 80  # compact and URL-safe


def test_any_changed_character_or_another_secret_fails_verification():
    token = TOKENS.click("shop-1a2b3c", DELIVERY, 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, char in enumerate(token):
        for other in (alphabet[(alphabet.index(char) + 1) % 64], alphabet[(alphabet.index(char) + 33) % 64]):
            assert TOKENS.verify(token[:i] + other + token[i + 1:]) is None, (i, other)
    assert Tokens(b"another secret").verify(token) is None
    for broken in (token[:-1], token + "A", token + "=", "", "%2F%2Fevil.example", "//evil.example",
                   base64.urlsafe_b64encode(b"https://evil.example").decode().rstrip("=")):
        assert TOKENS.verify(broken) is None, broken


def test_urls_in_text_end_before_punctuation_and_hangul_and_only_web_urls_are_tracked():
    seen = []

    def link(url):
        seen.append(url)
        return f"<{len(seen) - 1}>"

    text = ("세일: https://shop.kr/spring. 상품(https://shop.kr/p/7?a=1&b=2) https://shop.kr/p/8에서 확인, "
            "위키 https://ko.wikipedia.org/wiki/Foo_(bar)! 문의 mailto:help@shop.kr tel:0801234567")
    assert rewrite_text(text, link) == "세일: <0>. 상품(<1>) <2>에서 확인, 위키 <3>! 문의 mailto:help@shop.kr tel:0801234567"
    assert seen == ["https://shop.kr/spring", "https://shop.kr/p/7?a=1&b=2", "https://shop.kr/p/8",
                    "https://ko.wikipedia.org/wiki/Foo_(bar)"]


def test_only_anchor_hrefs_are_rewritten_in_html_and_entities_are_read_as_the_url():
    html = ('<link href="https://cdn.kr/a.css"><img src="https://cdn.kr/a.png">'
            "<a class='x' href='https://shop.kr/p?a=1&amp;b=2' title=\"a>b\">상품</a>"
            '<A HREF="mailto:help@shop.kr">문의</A><area href="http://shop.kr/map">'
            '<a data-href="https://x.kr" href=https://shop.kr/u>u</a>')
    assert rewrite_html(html, lambda url: f"T[{url}]") == (
        '<link href="https://cdn.kr/a.css"><img src="https://cdn.kr/a.png">'
        "<a class='x' href=\"T[https://shop.kr/p?a=1&amp;b=2]\" title=\"a>b\">상품</a>"
        '<A HREF="mailto:help@shop.kr">문의</A><area href="T[http://shop.kr/map]">'
        '<a data-href="https://x.kr" href="T[https://shop.kr/u]">u</a>')


def test_utm_parameters_are_added_unless_the_link_has_its_own():
    utm = utm_for({}, "email", "j-spring", "welcome")
    assert utm == {"source": "nudge", "medium": "email", "campaign": "j-spring", "content": "welcome"}
    assert utm_for({"source": "shop", "campaign": "spring"}, "sms", "", "") == {
        "source": "shop", "medium": "sms", "campaign": "spring"}
    assert utm_for({}, "push", "", "") == {"source": "nudge", "medium": "push", "campaign": "direct"}
    assert with_utm("https://shop.kr/p?a=1#top", utm) == (
        "https://shop.kr/p?a=1&utm_source=nudge&utm_medium=email&utm_campaign=j-spring&utm_content=welcome#top")
    assert with_utm("https://shop.kr/p", {"source": "nudge"}) == "https://shop.kr/p?utm_source=nudge"
    assert with_utm("https://shop.kr/p?UTM_Source=news&x=1", utm) == "https://shop.kr/p?UTM_Source=news&x=1"
    assert utm_of("https://shop.kr/p?utm_source=news&x=1&utm_campaign=spring") == {"source": "news",
                                                                                   "campaign": "spring"}
    with pytest.raises(InvalidArgument) as bad:
        check_utm({"term": "x"})
    assert bad.value.field == "policy.utm.term"
    with pytest.raises(InvalidArgument) as bad:
        check_utm({"source": 3})
    assert bad.value.field == "policy.utm.source"


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (compatible; Barracuda Sentinel)", "Proofpoint URL Defense", "Mimecast Link Scanner",
    "Mozilla/5.0 (Windows NT 10.0) BingPreview/1.0b", "", "python-requests/2.31"])
def test_prefetchers_and_scanners_are_machines(agent):
    assert is_machine(agent)


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"])
def test_people_are_not_machines(agent):
    assert not is_machine(agent)


def _tracked(channel, advertising=False, unsubscribe=None):
    links = Links(TOKENS, "https://t.shop.kr/", "ws-1", DELIVERY, ["https://shop.kr/kept"])
    return links, links.tracking(utm_for({}, channel, "", ""), unsubscribe)


def test_render_tracks_links_counts_their_length_and_keeps_earlier_link_ids():
    links, tracking = _tracked(SMS)
    text = "주문하신 상품을 확인하세요 https://shop.kr/o/1"
    assert render(SMS, {"text": text}, {}, False, "", None).sms_type == "SMS"
    content = render(SMS, {"text": text}, {}, False, "", None, tracking)
    assert content.body == f"주문하신 상품을 확인하세요 https://t.shop.kr/t/c/{TOKENS.click('ws-1', DELIVERY, 1)}"
    assert content.sms_type == "LMS"  # the tracked URL is what is sent, so it is what counts
    assert links.urls == ["https://shop.kr/kept",
                          "https://shop.kr/o/1?utm_source=nudge&utm_medium=sms&utm_campaign=direct"]


def test_render_tracks_buttons_and_notification_urls_but_not_images():
    links, tracking = _tracked(FRIENDTALK)
    content = render(FRIENDTALK, {"text": "t", "image_url": "https://img.kr/a.jpg",
                                  "buttons": [{"name": "b", "type": "WL", "url": "https://shop.kr/b"},
                                              {"name": "app", "type": "AL", "url": "shop://home"}]},
                     {}, False, "", None, tracking)
    assert content.media_urls == ("https://img.kr/a.jpg",)
    tracked = f"https://t.shop.kr/t/c/{TOKENS.click('ws-1', DELIVERY, 1)}"
    assert content.buttons == ({"name": "b", "type": "WL", "url": tracked},
                               {"name": "app", "type": "AL", "url": "shop://home"})
    links, tracking = _tracked(PUSH)
    push = render(PUSH, {"title": "t", "body": "b https://shop.kr/x", "url": "https://shop.kr/cart"}, {}, False, "",
                  None, tracking)
    assert push.url == f"https://t.shop.kr/t/c/{TOKENS.click('ws-1', DELIVERY, 1)}"
    assert push.body == "b https://shop.kr/x"  # a notification's text is not a link


def test_email_gets_the_pixel_and_one_click_unsubscribe_before_the_workspace_page():
    links, tracking = _tracked(EMAIL, unsubscribe="advertising")
    content = render(EMAIL, {"subject": "s", "text": "t", "html": "<html><body>t</body></html>"}, {}, True, "넛지",
                     {"url": "mailto:unsubscribe@shop.kr"}, tracking)
    one_click = f"https://t.shop.kr/u/{TOKENS.unsubscribe('ws-1', DELIVERY, 'advertising')}"
    assert content.data == {"unsubscribe_url": one_click, "unsubscribe_also": "mailto:unsubscribe@shop.kr"}
    assert content.html.endswith(f'<a href="{one_click}">수신거부(unsubscribe)</a></p><img '
                                 f'src="https://t.shop.kr/t/o/{TOKENS.open("ws-1", DELIVERY)}" width="1" height="1" '
                                 'alt=""></body></html>')
    assert content.body.endswith(f"넛지 | 수신거부(unsubscribe): {one_click}")
    links, tracking = _tracked(EMAIL)
    receipt = render(EMAIL, {"subject": "s", "text": "t"}, {}, False, "", None, tracking)
    assert receipt.data == {} and receipt.html is None  # no unsubscribe on a receipt; no HTML, no pixel
