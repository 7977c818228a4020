"""The arithmetic of the views: rates, the two-proportion test of an experiment, and a
customer's value scores. Pure."""

import math
from dataclasses import dataclass
from statistics import NormalDist


def rates(counts: dict) -> dict:
    """Rates over what was sent (over delivered once receipts say more were delivered)."""
    base = max(counts["delivered"], counts["sent"])
    return {"delivery_rate": _ratio(counts["delivered"], counts["sent"]),
            "open_rate": _ratio(counts["opened"], base), "click_rate": _ratio(counts["clicked"], base),
            "click_to_open_rate": _ratio(counts["clicked"], counts["opened"]),
            "conversion_rate": _ratio(counts["converted"], base),
            "unsubscribe_rate": _ratio(counts["unsubscribed"], base)}


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class Comparison:
    against: str
    lift: float
    relative_lift: float
    p_value: float
    z: float
    ci_low: float
    ci_high: float
    significant: bool


def compare(runs: int, conversions: int, base_runs: int, base_conversions: int, against: str,
            confidence: float = 0.95) -> Comparison:
    """Variant vs baseline: the pooled two-proportion z-test (two-sided p-value) and the
    confidence interval of the difference with the unpooled standard error."""
    rate, base = _ratio(conversions, runs), _ratio(base_conversions, base_runs)
    lift = rate - base
    pooled = _ratio(conversions + base_conversions, runs + base_runs)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / runs + 1 / base_runs)) if runs and base_runs else 0.0
    z = lift / spread if spread else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2)) if spread else 1.0
    margin = NormalDist().inv_cdf(1 - (1 - confidence) / 2) * (
        math.sqrt(rate * (1 - rate) / runs + base * (1 - base) / base_runs) if runs and base_runs else 0.0)
    return Comparison(against, lift, _ratio(lift, base), p_value, z, lift - margin, lift + margin,
                      bool(spread) and p_value < 1 - confidence)


def quintile(value: float, edges: list[float]) -> int:
    """1–5 by the four ascending edges (the 20/40/60/80th percentiles of the workspace)."""
    return 1 + sum(value > edge for edge in edges)


def churn_risk(orders: int, days_since_last: float, days_between: float | None) -> float:
    """0–1: how overdue the next order is. With two orders or more, against the customer's own
    average gap between orders; with one, against 90 days. Past three gaps it is near 1."""
    if orders == 0:
        return 1.0
    gap = days_between if days_between and days_between > 0 else 90.0
    return round(1 - math.exp(-days_since_last / gap), 4)
