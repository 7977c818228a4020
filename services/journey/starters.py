"""The starter library: ready-made journeys that ship with the product (onboarding, cart
abandonment, post-purchase, birthday, dormancy prevention and win-back, the two-yearly
advertising-consent confirmation), and how one becomes a workspace's journey.

A starter's definition names its templates and segments by *slot*. A template slot's name is
also its default template id, so a workspace whose templates carry those ids needs no
mapping; segments get generated ids, so every segment slot must be mapped. `instantiate`
puts the workspace's ids in; the service then saves the result as an ordinary draft.

Timings follow the Datarize article in /work/shared/reference (004_510ac99511237009.txt:
"CRM으로 완성하는 고객 여정: 단계별 실행 가이드") unless said otherwise. Pure data and
functions: no I/O.
"""

import copy
from dataclasses import dataclass

import orjson

from kit.errors import InvalidArgument, NotFound

PURCHASE = {"event": "Order Completed"}


def _send(template: str, channels: list[str], advertising: bool, next: str | None = None) -> dict:
    node = {"kind": "send", "channels": channels, "template": template, "advertising": advertising}
    return node | ({"next": next} if next else {})


def _wait(duration: str, next: str) -> dict:
    return {"kind": "wait", "duration": duration, "next": next}


@dataclass(frozen=True)
class SegmentSlot:
    id: str
    description: str
    rules: dict          # a rule that fits; the workspace creates the segment and maps the slot to it


@dataclass(frozen=True)
class Starter:
    id: str
    name: str
    description: str
    source: str                          # where the schedule comes from
    templates: dict[str, str]            # slot (= default template id) -> what the message says
    segments: tuple[SegmentSlot, ...]
    definition: dict


# -- onboarding: 004 §1 (웰컴 메시지 가입 즉시 · 첫 구매 쿠폰 가입 직후) and §2 ① D+1~D+6, ② D+14~D+30 ----
# Stops at the first purchase: the article's stage 2 is "가입 후 미구매 고객 활성화".
ONBOARDING = Starter(
    id="onboarding", name="Onboarding: welcome, then D+1 … D+30 until the first purchase",
    description="Signed Up → welcome and first-purchase coupon at once; coupon expiry notice D+1 (가입쿠폰 만료 알림); "
                "coupon D+2 (미구매 쿠폰 지급 1차); reminder D+3 (2차); reviews D+6 (후기 콘텐츠); survey D+14 "
                "(미구매 사유 설문); last try D+30 (최종 활성화 시도). A purchase ends it.",
    source="004 Datarize, 1단계 + 2단계 tables",
    templates={
        "onboarding-welcome": "welcome message, right at sign-up (informational)",
        "onboarding-first-coupon": "first-purchase coupon, right after sign-up",
        "onboarding-coupon-expiry": "D+1: the sign-up coupon expires soon (informational: only the coupon the "
                                    "person holds, as an AlimTalk template review requires)",
        "onboarding-coupon": "D+2: an extra coupon for a first purchase",
        "onboarding-coupon-reminder": "D+3: reminder of the coupon",
        "onboarding-reviews": "D+6: picks from customer reviews",
        "onboarding-survey": "D+14: why not yet? a short survey (informational)",
        "onboarding-last-try": "D+30: last coupon reminder",
    },
    segments=(),
    definition={
        "trigger": {"kind": "event", "event": "Signed Up"},
        "goal": PURCHASE,
        "start": "welcome",
        "nodes": {
            "welcome": _send("onboarding-welcome", ["alimtalk", "email"], False, "first_coupon"),
            "first_coupon": _send("onboarding-first-coupon", ["friendtalk", "sms"], True, "to_d1"),
            "to_d1": _wait("P1D", "coupon_expiry"),
            "coupon_expiry": _send("onboarding-coupon-expiry", ["alimtalk", "sms"], False, "to_d2"),
            "to_d2": _wait("P1D", "coupon"),
            "coupon": _send("onboarding-coupon", ["friendtalk", "sms"], True, "to_d3"),
            "to_d3": _wait("P1D", "coupon_reminder"),
            "coupon_reminder": _send("onboarding-coupon-reminder", ["friendtalk", "sms"], True, "to_d6"),
            "to_d6": _wait("P3D", "reviews"),
            "reviews": _send("onboarding-reviews", ["friendtalk", "sms"], True, "to_d14"),
            "to_d14": _wait("P8D", "survey"),
            "survey": _send("onboarding-survey", ["email"], False, "to_d30"),
            "to_d30": _wait("P16D", "last_try"),
            "last_try": _send("onboarding-last-try", ["friendtalk", "sms"], True),
        },
    },
)

# -- cart abandonment: 004 §3, D+1 / D+3 / D+7 ------------------------------------------------------------
# The article sends D+1 as an "자동 알림톡"; a nudge to buy is advertising, which AlimTalk may not
# carry, so D+1 goes by push with SMS after it (the article's channel order: push before SMS).
CART_ABANDONMENT = Starter(
    id="cart-abandonment", name="Cart abandonment: D+1, D+3, D+7 unless they buy",
    description="Product Added → reminder D+1 (장바구니 미구매 알림); coupon D+3 (장바구니 리마인드); gift notice D+7 "
                "(사은품 지급 안내, SMS/LMS). A purchase ends it; again at most once in 7 days.",
    source="004 Datarize, 3단계 table",
    templates={
        "cart-d1": "D+1: what is still in the cart",
        "cart-d3": "D+3: the cart with a coupon",
        "cart-d7": "D+7: a gift with the order",
    },
    segments=(),
    definition={
        "trigger": {"kind": "event", "event": "Product Added"},
        "goal": PURCHASE,
        "entry": {"mode": "cooldown", "cooldown": "P7D"},
        "start": "to_d1",
        "nodes": {
            "to_d1": _wait("P1D", "d1"),
            "d1": _send("cart-d1", ["push", "sms"], True, "to_d3"),
            "to_d3": _wait("P2D", "d3"),
            "d3": _send("cart-d3", ["friendtalk", "sms"], True, "to_d7"),
            "to_d7": _wait("P4D", "d7"),
            "d7": _send("cart-d7", ["sms", "email"], True),
        },
    },
)

# -- post-purchase: 004 §4, 구매 D+1 / D+14 / D+30 --------------------------------------------------------
POST_PURCHASE = Starter(
    id="post-purchase", name="Post-purchase: thanks D+1, recommendations D+14, repurchase D+30",
    description="Order Completed → thanks and a review request D+1 (웰컴 감사 메시지 + 첫 후기 요청); recommendations "
                "D+14 (베스트 상품 추천); repurchase reminder D+30 (재구매 시점 알림).",
    source="004 Datarize, 4단계 table",
    templates={
        "post-purchase-thanks": "D+1: thank you, and how was it? (informational)",
        "post-purchase-recommend": "D+14: best sellers and picks for them",
        "post-purchase-repurchase": "D+30: time to restock",
    },
    segments=(),
    definition={
        "trigger": {"kind": "event", "event": "Order Completed"},
        "entry": {"mode": "every_time"},
        "start": "to_d1",
        "nodes": {
            "to_d1": _wait("P1D", "thanks"),
            "thanks": _send("post-purchase-thanks", ["alimtalk", "email"], False, "to_d14"),
            "to_d14": _wait("P13D", "recommend"),
            "recommend": _send("post-purchase-recommend", ["friendtalk", "email"], True, "to_d30"),
            "to_d30": _wait("P16D", "repurchase"),
            "repurchase": _send("post-purchase-repurchase", ["push", "email"], True),
        },
    },
)

# -- birthday: 000 (생일/기념일 축하, one of the five classic automations) --------------------------------
BIRTHDAY = Starter(
    id="birthday", name="Birthday: a coupon at 09:00, a reminder a week later",
    description="Every year on the `birthday` trait at 09:00 in the person's zone: a coupon; the trait "
                "`birthday_coupon_year_sent` marks it; a reminder 7 days later.",
    source="000 (five classic automations: birthday / anniversary)",
    templates={
        "birthday-coupon": "happy birthday, with a coupon",
        "birthday-reminder": "D+7: the birthday coupon expires soon",
    },
    segments=(),
    definition={
        "trigger": {"kind": "date_trait", "trait": "birthday", "at": "09:00"},
        "entry": {"mode": "every_time"},
        "start": "coupon",
        "nodes": {
            "coupon": _send("birthday-coupon", ["friendtalk", "sms"], True, "mark"),
            "mark": {"kind": "update_trait", "trait": "birthday_coupon_year_sent", "value": True, "next": "in_7d"},
            "in_7d": _wait("P7D", "reminder"),
            "reminder": _send("birthday-reminder", ["push", "sms"], True),
        },
    },
)

# -- dormancy: 004 §5 (휴면 진입 전 예방 캠페인 / 휴면 고객 복귀 캠페인) -----------------------------------
# Dormancy is day 365 without a visit. Prevention: D+265, 280, 295, 310, 325 (D-100 … D-40) and the
# final one at D+335 (D-30). Win-back: the text says it starts two weeks before (D-14 = D+351) and
# tries a last time one week before (D-7 = D+358); the article's table lists the two day counts
# swapped (D-14 | D+358, D-7 | D+351), so the days follow the text and 365 − 14 / 365 − 7.
# Entered at D+265 (the segment), every day below counts from that entry; a visit leaves the
# segment and ends the run.
DORMANT_SEGMENT = "dormant-265d"
DORMANCY = Starter(
    id="dormancy", name="Dormancy prevention D+265 … D+335, win-back D+351 and D+358",
    description="No visit for 265 days → a notice with a coupon at D+265, 280, 295, 310, 325 (사전 예방), the last "
                "at D+335 (최종 예방, D-30); then win-back at D+351 (복귀 유도 시작, D-14) and D+358 (최종 복귀 "
                "시도, D-7). A visit ends it.",
    source="004 Datarize, 5단계 tables",
    templates={
        "dormancy-notice": "D+265 … D+325: we miss you, with a coupon",
        "dormancy-final-notice": "D+335 (D-30): last notice before the account turns dormant, with a coupon",
        "dormancy-winback": "D+351 (D-14): what they missed, a reason to come back",
        "dormancy-winback-final": "D+358 (D-7): last try to bring them back",
    },
    segments=(SegmentSlot(DORMANT_SEGMENT, "no visit for 265 days",
                          {"last_seen": {"op": "more_than", "ago": "P265D"}}),),
    definition={
        "trigger": {"kind": "segment_entered", "segment": DORMANT_SEGMENT},
        "exit_criteria": {"segment_exited": [DORMANT_SEGMENT]},
        "entry": {"mode": "every_time"},
        "start": "d265",
        "nodes": {
            "d265": _send("dormancy-notice", ["friendtalk", "sms"], True, "to_d280"),
            "to_d280": _wait("P15D", "d280"),
            "d280": _send("dormancy-notice", ["friendtalk", "sms"], True, "to_d295"),
            "to_d295": _wait("P15D", "d295"),
            "d295": _send("dormancy-notice", ["friendtalk", "sms"], True, "to_d310"),
            "to_d310": _wait("P15D", "d310"),
            "d310": _send("dormancy-notice", ["friendtalk", "sms"], True, "to_d325"),
            "to_d325": _wait("P15D", "d325"),
            "d325": _send("dormancy-notice", ["friendtalk", "sms"], True, "to_d335"),
            "to_d335": _wait("P10D", "d335"),
            "d335": _send("dormancy-final-notice", ["friendtalk", "sms"], True, "to_d351"),
            "to_d351": _wait("P16D", "d351"),
            "d351": _send("dormancy-winback", ["friendtalk", "sms"], True, "to_d358"),
            "to_d358": _wait("P7D", "d358"),
            "d358": _send("dormancy-winback-final", ["friendtalk", "sms"], True),
        },
    },
)

# -- advertising consent confirmation: 정보통신망법 §50⑧ and its decree §62-3 --------------------------
# Whoever holds advertising consent must tell each person, every 2 years from the consent, that
# they consented (when, to whom) and how to withdraw. Each person's two years start on their own
# day, so the journey enters on a segment the person joins by time alone (consent granted more
# than 700 days ago: a month ahead of the two years, room for quiet hours), not a yearly
# broadcast that would reach everyone on one day, up to a year off. It stays while the consent
# does: every 730 days another notice; a withdrawal or a new consent leaves the segment and ends
# the run (a new consent's own two years start again). One journey per advertising purpose.
CONSENT_SEGMENT = "ads-consent-due"
ADS_CONSENT_CONFIRMATION = Starter(
    id="ads-consent-confirmation", name="Advertising consent confirmation every 2 years (정보통신망법 §50⑧)",
    description="Consent to advertising granted 700 days ago → an informational notice of the consent (date, sender, "
                "how to withdraw), again every 730 days while it stands. Create one per purpose (ads:sms, ads:email, "
                "ads:push, ads:kakao), each with its segment.",
    source="정보통신망법 §50⑧, 시행령 §62-3",
    templates={
        "ads-consent-confirmation": "you agreed to receive advertising on <date>; how to withdraw (informational)",
    },
    segments=(SegmentSlot(CONSENT_SEGMENT, "advertising consent (one purpose) granted more than 700 days ago",
                          {"consent": {"purpose": "ads:sms", "state": "granted",
                                       "since": {"op": "before", "ago": "P700D"}}}),),
    definition={
        "trigger": {"kind": "segment_entered", "segment": CONSENT_SEGMENT},
        "exit_criteria": {"segment_exited": [CONSENT_SEGMENT]},
        "entry": {"mode": "every_time"},
        "start": "notice",
        "nodes": {
            "notice": _send("ads-consent-confirmation", ["alimtalk", "sms", "email"], False, "in_2y"),
            "in_2y": _wait("P730D", "still_consented"),
            # the exit criteria end the run on leaving; asking again keeps a missed exit from a second notice
            "still_consented": {"kind": "condition", "rule": {"segment": CONSENT_SEGMENT},
                                "then": "notice", "else": "done"},
            "done": {"kind": "exit"},
        },
    },
)

STARTERS: dict[str, Starter] = {s.id: s for s in (ONBOARDING, CART_ABANDONMENT, POST_PURCHASE, BIRTHDAY, DORMANCY,
                                                   ADS_CONSENT_CONFIRMATION)}


def starter(starter_id: str, field: str = "id") -> Starter:
    found = STARTERS.get(starter_id)
    if found is None:
        message = f"{field}: unknown starter {starter_id!r}; one of {', '.join(STARTERS)}"
        if field == "id":
            raise NotFound(message, field=field)
        raise InvalidArgument(message, field=field)
    return found


def definition(starter_id: str) -> dict:
    """A fresh copy of a starter's definition, with its slot names as ids."""
    return copy.deepcopy(STARTERS[starter_id].definition)


def template_slots(found: Starter) -> list[dict]:
    """Each template slot with the channels and kind of the sends that use it."""
    sends = [n for n in found.definition["nodes"].values() if n["kind"] == "send"]
    return [{"slot": slot, "description": text,
             "channels": next(n["channels"] for n in sends if n["template"] == slot),
             "advertising": next(n["advertising"] for n in sends if n["template"] == slot)}
            for slot, text in found.templates.items()]


def instantiate(found: Starter, templates: dict[str, str], segments: dict[str, str]) -> tuple[dict, dict, dict]:
    """(definition, template id per slot, segment id per slot) with the workspace's ids in.
    A template slot not mapped keeps its own name as the template id; a segment slot must be
    mapped. Errors name `templates.<slot>` / `segments.<slot>`."""
    _check_mapping("templates", templates, set(found.templates))
    _check_mapping("segments", segments, {s.id for s in found.segments})
    for slot in found.segments:
        if slot.id not in segments:
            raise InvalidArgument(f"segments.{slot.id}: required; map it to a segment of yours: {slot.description} "
                                  f"(a rule that fits: {orjson.dumps(slot.rules).decode()})",
                                  field=f"segments.{slot.id}")
    template_ids = {slot: templates.get(slot, slot) for slot in found.templates}
    segment_ids = {slot.id: segments[slot.id] for slot in found.segments}
    tree = copy.deepcopy(found.definition)
    for node in tree["nodes"].values():
        if node["kind"] == "send":
            node["template"] = template_ids[node["template"]]
        elif node["kind"] == "condition" and set(node["rule"]) == {"segment"}:
            node["rule"] = {"segment": segment_ids[node["rule"]["segment"]]}
    if "segment" in tree["trigger"]:
        tree["trigger"]["segment"] = segment_ids[tree["trigger"]["segment"]]
    if "exit_criteria" in tree:
        tree["exit_criteria"]["segment_exited"] = [segment_ids[s] for s in tree["exit_criteria"]["segment_exited"]]
    return tree, template_ids, segment_ids


def _check_mapping(name: str, given: dict[str, str], slots: set[str]) -> None:
    for slot, value in given.items():
        if slot not in slots:
            raise InvalidArgument(f"{name}.{slot}: not a slot of this starter; its slots: "
                                  f"{', '.join(sorted(slots)) or 'none'}", field=f"{name}.{slot}")
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"{name}.{slot}: expected a {name[:-1]} id", field=f"{name}.{slot}")
