"""When a message may go out: workspace quiet hours in the person's zone, the Korean night
rule (advertising 21:00–08:00 KST needs separate consent, 정보통신망법 art. 50 ③) and Kakao's
advertising window (FriendTalk / brand message ads 08:00–20:00 KST). A message outside is
deferred to the earliest moment every rule allows, never dropped. Pure: `now` is passed in.

The night rule's proviso exempts "media named by presidential decree"; the enforcement
decree (시행령 art. 61 ③) names e-mail. Which channels are exempt is workspace policy
(`night_rule.exempt`), defaulting to the law: ["email"]."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from kit.errors import InvalidArgument
from services.dispatch.channels import ALIMTALK, CHANNELS, EMAIL, FRIENDTALK

SEOUL = ZoneInfo("Asia/Seoul")
NIGHT_RULE, KAKAO_AD_WINDOW, QUIET_HOURS = "night_rule", "kakao_ad_window", "quiet_hours"
_MINUTE = timedelta(minutes=1)
_HORIZON = timedelta(days=3)  # rules repeat daily: nothing allowed within 3 days means never
# 정보통신망법 시행령 art. 61 ③: e-mail is the medium the night rule's proviso exempts.
NIGHT_RULE_EXEMPT_BY_LAW = (EMAIL,)


@dataclass(frozen=True)
class Deferral:
    until: datetime   # the earliest moment every rule allows
    reason: str       # the rule that decided `until`: night_rule | kakao_ad_window | quiet_hours


class NeverAllowed(ValueError):
    """The rules together leave no moment of the day (quiet hours covering the daytime)."""


@dataclass(frozen=True)
class _Window:
    """A daily wall-clock window [start, end) in a zone, wrapping midnight if start > end."""
    start: time
    end: time
    zone: ZoneInfo
    reason: str

    def blocks(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, moment: datetime) -> datetime:
        """The earliest moment ≥ `moment` outside the window (`moment` is inside)."""
        local = moment.astimezone(self.zone)
        day: date = local.date() + timedelta(days=1 if self.start > self.end and local.time() >= self.start else 0)
        candidate = datetime.combine(day, self.end, self.zone)
        exists = candidate.astimezone(timezone.utc).astimezone(self.zone).replace(tzinfo=None) == \
            candidate.replace(tzinfo=None)
        if exists and candidate.utcoffset() == local.utcoffset() and candidate > moment:
            return candidate
        # A DST change lies in between (or the end falls in its gap): walk the wall clock by
        # minutes, which every zone's offsets and our windows' edges are multiples of.
        step = moment.astimezone(timezone.utc).replace(second=0, microsecond=0) + _MINUTE
        while self.blocks(step):
            step += _MINUTE
        return step


def parse_hhmm(text: str, field: str = "time") -> time:
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except (AttributeError, ValueError):
        raise InvalidArgument(f"{field}: expected HH:MM (00:00 to 23:59), got {text!r}", field=field) from None


def parse_quiet_hours(quiet: dict, path: str = "quiet_hours") -> dict:
    """Workspace policy {"start": "HH:MM", "end": "HH:MM", "informational": bool?}, checked;
    the window is in each person's zone and may wrap midnight (22:00 → 08:00)."""
    if not isinstance(quiet, dict):
        raise InvalidArgument(f"{path}: expected {{start, end, informational?}}", field=path)
    if extra := sorted(set(quiet) - {"start", "end", "informational"}):
        raise InvalidArgument(f"{path}.{extra[0]}: not a quiet hours field; expected start, end, informational",
                              field=f"{path}.{extra[0]}")
    start, end = (parse_hhmm(quiet.get(key), f"{path}.{key}") for key in ("start", "end"))
    if start == end:
        raise InvalidArgument(f"{path}.end: the window is empty (start equals end)", field=f"{path}.end")
    informational = quiet.get("informational", False)
    if not isinstance(informational, bool):
        raise InvalidArgument(f"{path}.informational: expected true or false", field=f"{path}.informational")
    return {"start": quiet["start"], "end": quiet["end"], "informational": informational}


def parse_night_rule(night_rule: dict, path: str = "night_rule") -> dict:
    """Workspace policy {"exempt": [channel, ...]}: the channels the night rule does not
    apply to. Default (no setting): the law's, ["email"]; [] applies it to every channel."""
    if not isinstance(night_rule, dict):
        raise InvalidArgument(f"{path}: expected {{exempt: [channel, ...]}}", field=path)
    if extra := sorted(set(night_rule) - {"exempt"}):
        raise InvalidArgument(f"{path}.{extra[0]}: not a night rule field; expected exempt", field=f"{path}.{extra[0]}")
    exempt = night_rule.get("exempt", list(NIGHT_RULE_EXEMPT_BY_LAW))
    if not isinstance(exempt, list):
        raise InvalidArgument(f"{path}.exempt: expected a list of channels", field=f"{path}.exempt")
    for i, channel in enumerate(exempt):
        if channel not in CHANNELS:
            raise InvalidArgument(f"{path}.exempt[{i}]: unknown channel {channel!r}; expected one of "
                                  f"{', '.join(CHANNELS)}", field=f"{path}.exempt[{i}]")
    return {"exempt": list(dict.fromkeys(exempt))}


def exempt_from_night_rule(policy: dict) -> frozenset[str]:
    """The channels a workspace's policy exempts from the night rule (the law's when unset)."""
    return frozenset((policy.get("night_rule") or {}).get("exempt", NIGHT_RULE_EXEMPT_BY_LAW))


def check_channel_kind(channel: str, advertising: bool) -> None:
    """AlimTalk carries only informational messages from approved templates (Kakao policy)."""
    if channel == ALIMTALK and advertising:
        raise InvalidArgument("AlimTalk carries informational messages only; send advertising by FriendTalk "
                              "or another channel", field="advertising")


def next_allowed(now: datetime, *, channel: str, advertising: bool, profile_zone: ZoneInfo | str | None = None,
                 quiet_hours: tuple[str, str] | None = None, night_consent: bool = False,
                 quiet_hours_informational: bool = False,
                 night_rule_exempt: frozenset[str] | tuple[str, ...] = NIGHT_RULE_EXEMPT_BY_LAW) -> Deferral | None:
    """None: send now. Otherwise the earliest moment ≥ now that every rule allows, and the
    rule that decided it. The night and Kakao rules are in Korean time whatever the
    person's zone; quiet hours are in the person's zone (default Asia/Seoul). Channels in
    `night_rule_exempt` (by default e-mail, as the decree has it) skip the night rule."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    check_channel_kind(channel, advertising)
    zone = ZoneInfo(profile_zone) if isinstance(profile_zone, str) else profile_zone or SEOUL
    windows = []
    if advertising and not night_consent and channel not in night_rule_exempt:
        windows.append(_Window(time(21), time(8), SEOUL, NIGHT_RULE))
    if advertising and channel == FRIENDTALK:  # stricter than the night rule: consent does not lift it
        windows.append(_Window(time(20), time(8), SEOUL, KAKAO_AD_WINDOW))
    if quiet_hours and (advertising or quiet_hours_informational):
        start, end = (parse_hhmm(t, "quiet_hours") for t in quiet_hours)
        if start != end:
            windows.append(_Window(start, end, zone, QUIET_HOURS))
    # Each jump lands on the end of a window, the earliest moment that rule allows, so no
    # allowed moment is skipped; repeat until no window holds the moment.
    moment, reason = now, None
    while blocking := next((w for w in windows if w.blocks(moment)), None):
        moment, reason = blocking.end_after(moment), blocking.reason
        if moment - now > _HORIZON:
            raise NeverAllowed(f"no moment within {_HORIZON.days} days satisfies "
                               f"{', '.join(w.reason for w in windows)}")
    return None if reason is None else Deferral(moment.astimezone(now.tzinfo), reason)
