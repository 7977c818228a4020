"""Fatigue limits: the workspace's policy, and one atomic Redis decision per send.

A send is checked against every rule that applies to it and, when allowed, recorded in
every counter, by one Lua script: replicas deciding for the same person at the same time
are serialized by Redis, so a limit is never overshot.

Policy (JSON)::

    {"exempt_transactional": true,
     "rules": [{"kind": "channel", "limit": 2, "window": "day"},
               {"kind": "channel", "limit": 1, "window": "PT12H", "channels": ["sms"]},
               {"kind": "all_channels", "limit": 5, "window": "week"},
               {"kind": "template", "limit": 1, "window": "P7D"},
               {"kind": "journey", "limit": 3, "window": "week"}]}

A window is a rolling ISO-8601 duration (weeks, days, hours, minutes, whole seconds) or a
calendar `day` / `week` (ISO week, from Monday) in the profile's time zone.

Keys, all hash-tagged by workspace and profile so one script touches one Redis Cluster slot
(`P` = `nudge:dispatch:fatigue:{<workspace>:<profile>}`; scope = `channel:<channel>`, `all`,
`template:<template id>` or `journey:<journey id>`):

- `P:<scope>:roll:<window seconds>` — sorted set of the sends in a rolling window (member
  `<send id>|<channel>`, score = epoch ms); trimmed on each record, expires one window
  after its last send.
- `P:<scope>:day:<local date>` / `P:<scope>:week:<local date of Monday>` — counter of a
  calendar bucket; expires an hour after the bucket ends.
- `P:sent:<send id>|<channel>` — the send's reservation (the counters it was recorded in,
  as JSON): makes `decide` idempotent and `release` exact; expires with the longest of them.
- `P:keys` — set of the person's counter keys, expiring with the longest: what `move` carries
  to the survivor when the person is merged into another.
- `P:merged:<merged profile>` — marks counters moved in from a merged profile, so a retried
  move adds them once.

A merge (`move`) cannot be one script: the two people's keys live in different slots. It
reads the merged person's counters, adds them to the survivor's in one script (once, by the
marker), then takes exactly what it read from the merged person's: a retry after a crash
anywhere in between counts every send once.

A simulated send (the journey simulator's dry run) counts in its simulation's scratch
namespace instead, `P` = `nudge:dispatch:simulation:{<workspace>:<simulation id>}:fatigue`:
real counters are neither read nor written, and every scratch key expires an hour after
the simulation's last counted send, whatever the windows (virtual time runs far faster).
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from kit.errors import InvalidArgument
from services.dispatch.channels import CHANNELS

KINDS = ("channel", "all_channels", "template", "journey")
CALENDAR = ("day", "week")
MAX_LIMIT = 10_000                     # a rolling set holds at most `limit` sends: bounded memory
MAX_WINDOW = timedelta(days=366)
MAX_RULES = 50                         # every send is decided over all of them, in one Redis call
SLACK_MS = 3_600_000                   # keys outlive their window a little: replicas' clocks differ
SIMULATION_TTL_MS = 3_600_000          # a simulation's scratch counters, after its last counted send
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


@dataclass(frozen=True)
class Window:
    text: str                          # as written: "PT12H", "P7D", "day", "week"
    rolling: timedelta | None = None   # None: the calendar unit `text`

    def __str__(self) -> str:
        return f"calendar {self.text}" if self.rolling is None else self.text


@dataclass(frozen=True)
class Rule:
    kind: str
    limit: int
    window: Window
    channels: tuple[str, ...] | None = None   # kind "channel" only: the channels it limits

    def describe(self) -> str:
        per = {"channel": " per channel" + (f" ({', '.join(self.channels)})" if self.channels else ""),
               "all_channels": " across all channels", "template": " of the same template",
               "journey": " per journey"}[self.kind]
        return f"at most {self.limit}{per} per {self.window}"

    def scope(self, channel: str, template_id: str | None, journey_id: str | None) -> str | None:
        """The counter this send falls in, or None when the rule does not apply to it."""
        if self.kind == "channel":
            return f"channel:{channel}" if self.channels is None or channel in self.channels else None
        if self.kind == "all_channels":
            return "all"
        if self.kind == "template":
            return f"template:{template_id}" if template_id else None
        return f"journey:{journey_id}" if journey_id else None


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    exempt_transactional: bool = True


@dataclass(frozen=True)
class DeniedRule:
    index: int
    description: str

    def __str__(self) -> str:
        return f"rules[{self.index}] {self.description}"


@dataclass(frozen=True)
class Reservation:
    """What an allowed send was counted in, so `release` can take it back."""
    marker: str
    member: str
    counters: tuple[tuple[str, str], ...]   # (kind "r" rolling / "c" calendar, key)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: DeniedRule | None = None
    next_allowed_at: datetime | None = None
    reservation: Reservation | None = None   # None when nothing was counted (exempt, no rule applies)


ALLOWED = Decision(True)


def parse_policy(raw: str | bytes | dict | None, path: str = "policy") -> Policy:
    """The policy from JSON text or a decoded object; InvalidArgument names the bad field."""
    if raw is None:
        return Policy()
    if isinstance(raw, (str, bytes)):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            _fail(path, f"not valid JSON ({err})")
    if not isinstance(raw, dict):
        _fail(path, "expected an object")
    for name in raw:
        if name not in ("rules", "exempt_transactional"):
            _fail(f"{path}.{name}", "not a fatigue policy field; expected rules, exempt_transactional")
    exempt = raw.get("exempt_transactional", True)
    if not isinstance(exempt, bool):
        _fail(f"{path}.exempt_transactional", "expected true or false")
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        _fail(f"{path}.rules", "expected a list of rules")
    if len(rules) > MAX_RULES:
        _fail(f"{path}.rules", f"at most {MAX_RULES} rules")
    return Policy(tuple(_rule(rule, f"{path}.rules[{i}]") for i, rule in enumerate(rules)), exempt)


def _rule(raw, path: str) -> Rule:
    if not isinstance(raw, dict):
        _fail(path, "expected an object with kind, limit and window")
    for name in raw:
        if name not in ("kind", "limit", "window", "channels"):
            _fail(f"{path}.{name}", "not a rule field; expected kind, limit, window, channels")
    kind = raw.get("kind")
    if kind not in KINDS:
        _fail(f"{path}.kind", f"expected one of {', '.join(KINDS)}")
    limit = raw.get("limit")
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:  # type(): true is an int too
        _fail(f"{path}.limit", f"expected a whole number from 1 to {MAX_LIMIT}")
    channels = raw.get("channels")
    if channels is not None:
        if kind != "channel":
            _fail(f"{path}.channels", "only a rule of kind channel lists channels")
        if not isinstance(channels, list) or not channels:
            _fail(f"{path}.channels", "expected a non-empty list of channels")
        for j, channel in enumerate(channels):
            if channel not in CHANNELS:
                _fail(f"{path}.channels[{j}]", f"expected one of {', '.join(CHANNELS)}")
        channels = tuple(dict.fromkeys(channels))
    return Rule(kind, limit, _window(raw.get("window"), f"{path}.window"), channels)


def _window(raw, path: str) -> Window:
    if raw in CALENDAR:
        return Window(raw)
    match = _DURATION.fullmatch(raw) if isinstance(raw, str) and raw != "P" else None
    if match is None:
        _fail(path, "expected day, week or an ISO-8601 duration in weeks, days, hours, minutes and "
                    "whole seconds, like PT12H or P7D")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    try:
        span = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:  # P99999999999W
        span = MAX_WINDOW * 2
    if not timedelta(0) < span <= MAX_WINDOW:
        _fail(path, f"expected a duration above zero and at most {MAX_WINDOW.days} days")
    return Window(raw, span)


def _fail(field: str, what: str):
    raise InvalidArgument(f"{field}: {what}", field=field)


# KEYS[1]: the send's marker; KEYS[2..n-1]: one counter per applicable rule, in rule order;
# KEYS[n]: the person's index of counters (what a merge moves).
# ARGV: now ms, member, marker ttl ms, and the rules packed as "kind,limit,a,ttl;…" (one
# argument: packing many small arguments costs the client more than the script), where
# a = window ms (rolling, "r") or the bucket's end ms (calendar, "c"), ttl in ms.
# Replies {1, reservation JSON} or {0, denying rule's position, ms when all rules allow again}.
_DECIDE = AsyncScript(None, b"""
local done = redis.call('GET', KEYS[1])
if done then return {1, done} end
local now = tonumber(ARGV[1])
local rules = {}
for kind, limit, a, ttl in string.gmatch(ARGV[4], '(%a),(%d+),(%d+),(%d+)') do
  rules[#rules + 1] = {kind, tonumber(limit), tonumber(a), ttl}
end
local index = KEYS[#KEYS]
local worst, free = 0, -1
for i = 2, #KEYS - 1 do
  local kind, limit, a = rules[i - 1][1], rules[i - 1][2], rules[i - 1][3]
  local at
  if kind == 'r' then
    local since = string.format('(%d', now - a)
    local count = redis.call('ZCOUNT', KEYS[i], since, '+inf')
    if count >= limit then
      -- allowed again when enough of the counted sends have left the window to leave limit - 1
      local nth = redis.call('ZRANGEBYSCORE', KEYS[i], since, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
      at = tonumber(nth[2]) + a
    end
  elseif tonumber(redis.call('GET', KEYS[i]) or '0') >= limit then
    at = a
  end
  -- every denying rule must have let go: report the one that holds longest
  if at and at > free then worst, free = i - 1, at end
end
if worst > 0 then return {0, worst, free} end
local taken, seen = {}, {}
for i = 2, #KEYS - 1 do
  local key = KEYS[i]
  if not seen[key] then  -- two rules may share a counter; count the send once
    seen[key] = true
    local kind, a, ttl = rules[i - 1][1], rules[i - 1][3], rules[i - 1][4]
    if kind == 'r' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - a))
      redis.call('ZADD', key, now, ARGV[2])
    else
      redis.call('INCR', key)
    end
    redis.call('PEXPIRE', key, ttl)
    redis.call('SADD', index, key)
    if redis.call('PTTL', index) < tonumber(ttl) then redis.call('PEXPIRE', index, ttl) end
    taken[#taken + 1] = {kind, key}
  end
end
local reservation = cjson.encode(taken)
redis.call('SET', KEYS[1], reservation, 'PX', ARGV[3])
return {1, reservation}
""")

# KEYS[1]: the marker; KEYS[2..]: its counters; ARGV[1]: member; ARGV[2..]: their kinds.
# The marker goes first, so a second release (or one after the windows passed) does nothing.
_RELEASE = AsyncScript(None, b"""
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
for i = 2, #KEYS do
  if ARGV[i] == 'r' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  elseif tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
    redis.call('DECR', KEYS[i])
  end
end
return 1
""")


async def decide(redis: Redis, policy: Policy, *, workspace_id: str, profile_id: str, channel: str,
                 template_id: str | None, journey_id: str | None, transactional: bool, now: datetime,
                 zone: tzinfo | str, send_id: str, simulation_id: str | None = None) -> Decision:
    """Whether this send may go now under every rule; if so it is counted in the same step.
    Deciding again for the same send id and channel returns the first allowed decision
    without counting again (a denial counted nothing, so it is simply decided anew).
    With `simulation_id`, only that simulation's scratch counters are read and written."""
    if transactional and policy.exempt_transactional:
        return ALLOWED
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    now_ms = _ms(now)
    if simulation_id is None:
        prefix = f"nudge:dispatch:fatigue:{{{workspace_id}:{profile_id}}}"
    else:
        prefix = f"nudge:dispatch:simulation:{{{workspace_id}:{simulation_id}}}:fatigue"
    keys, packed, applied = [], [], []
    for index, rule in enumerate(policy.rules):
        scope = rule.scope(channel, template_id, journey_id)
        if scope is None:
            continue
        if rule.window.rolling is not None:
            span = _ms_of(rule.window.rolling)
            keys.append(f"{prefix}:{scope}:roll:{span // 1000}")
            kind, a, ttl = "r", span, span + SLACK_MS
        else:
            start, end = _bucket(now, zone, rule.window.text)
            keys.append(f"{prefix}:{scope}:{rule.window.text}:{start.isoformat()}")
            kind, a = "c", _ms(end)
            ttl = max(a - now_ms, 0) + SLACK_MS
        packed.append((kind, rule.limit, a, ttl if simulation_id is None else SIMULATION_TTL_MS))
        applied.append(index)
    if not keys:
        return ALLOWED
    member = f"{send_id}|{channel}"
    marker = f"{prefix}:sent:{member}"
    marker_ttl = max(ttl for *_, ttl in packed)
    rules_arg = ";".join(f"{kind},{limit},{a},{ttl}" for kind, limit, a, ttl in packed)
    reply = await _DECIDE([marker, *keys, f"{prefix}:keys"], [now_ms, member, marker_ttl, rules_arg], client=redis)
    if reply[0] == 0:
        index = applied[reply[1] - 1]
        return Decision(False, DeniedRule(index, policy.rules[index].describe()),
                        EPOCH + timedelta(milliseconds=reply[2]))
    counters = tuple((kind, key) for kind, key in orjson.loads(reply[1]))
    return Decision(True, reservation=Reservation(marker, member, counters))


async def release(redis: Redis, reservation: Reservation | None) -> bool:
    """Takes back a recorded send that was not made after all. True if it was still held."""
    if reservation is None:
        return False
    kinds = [kind for kind, _ in reservation.counters]
    keys = [key for _, key in reservation.counters]
    return bool(await _RELEASE([reservation.marker, *keys], [reservation.member, *kinds], client=redis))


# KEYS[1]: the survivor's merge marker, KEYS[2]: its index, KEYS[3..]: its counters. ARGV[1]:
# marker ttl ms; ARGV[2]: JSON list, per counter, of {kind "z" rolling set / "s" calendar count,
# ttl ms, value (count) or members [[member, score], ...]}. 0 when moved before.
_ADD_MOVED = AsyncScript(None, b"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local moved = cjson.decode(ARGV[2])
for i, counter in ipairs(moved) do
  local key = KEYS[i + 2]
  if counter.kind == 'z' then
    for _, pair in ipairs(counter.members) do redis.call('ZADD', key, pair[2], pair[1]) end
  else
    redis.call('INCRBY', key, counter.value)
  end
  if redis.call('PTTL', key) < counter.ttl then redis.call('PEXPIRE', key, counter.ttl) end
  redis.call('SADD', KEYS[2], key)
  if redis.call('PTTL', KEYS[2]) < counter.ttl then redis.call('PEXPIRE', KEYS[2], counter.ttl) end
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
""")

# KEYS[1]: the merged person's index, KEYS[2..]: its counters; ARGV[1]: what was moved, as
# for _ADD_MOVED. Takes exactly that, so a send counted meanwhile is not lost with it.
_TAKE_MOVED = AsyncScript(None, b"""
local moved = cjson.decode(ARGV[1])
for i, counter in ipairs(moved) do
  local key = KEYS[i + 1]
  if counter.kind == 'z' then
    for _, pair in ipairs(counter.members) do redis.call('ZREM', key, pair[1]) end
  elseif tonumber(redis.call('GET', key) or '0') <= counter.value then
    redis.call('DEL', key)
  else
    redis.call('DECRBY', key, counter.value)
  end
  if redis.call('EXISTS', key) == 0 then redis.call('SREM', KEYS[1], key) end
end
return 1
""")


async def move(redis: Redis, *, workspace_id: str, merged_id: str, survivor_id: str) -> int:
    """A merged person's counters added to the survivor's (their sends count against the
    survivor's limits from now on) and taken from the merged person's; the number moved.
    Safe to repeat: the survivor counts each merged person's counters once."""
    source = f"nudge:dispatch:fatigue:{{{workspace_id}:{merged_id}}}"
    target = f"nudge:dispatch:fatigue:{{{workspace_id}:{survivor_id}}}"
    keys = sorted(_text(k) for k in await redis.smembers(f"{source}:keys"))
    moved, found = [], []
    for key in keys:
        kind = _text(await redis.type(key))
        if kind == "zset":
            members = await redis.zrange(key, 0, -1, withscores=True)
            counter = {"kind": "z", "members": [[_text(m), int(score)] for m, score in members]}
        elif kind == "string":
            counter = {"kind": "s", "value": int(await redis.get(key) or 0)}
        else:
            continue  # expired since it was indexed
        ttl = await redis.pttl(key)
        counter["ttl"] = ttl if ttl > 0 else SLACK_MS
        moved.append(counter)
        found.append(key)
    if not moved:
        return 0
    payload = orjson.dumps(moved).decode()
    marker_ttl = max(c["ttl"] for c in moved)
    await _ADD_MOVED([f"{target}:merged:{merged_id}", f"{target}:keys",
                      *(target + key[len(source):] for key in found)], [marker_ttl, payload], client=redis)
    await _TAKE_MOVED([f"{source}:keys", *found], [payload], client=redis)
    return len(moved)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bucket(now: datetime, zone: tzinfo, unit: str):
    """First local date of the calendar day / ISO week holding `now`, and the moment it ends."""
    start = now.astimezone(zone).date()
    if unit == "week":
        start -= timedelta(days=start.weekday())
    return start, datetime.combine(start + timedelta(days=1 if unit == "day" else 7), time(), zone)


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("fatigue needs an aware datetime")
    return _ms_of(moment - EPOCH)


def _ms_of(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1000 + span.microseconds // 1000
