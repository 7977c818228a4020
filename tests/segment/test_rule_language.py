"""The segment rule language: the marketer's examples parse; bad trees name the bad node."""

from datetime import timedelta

import pytest

from kit.errors import InvalidArgument
import rules

VIEWED_3_TIMES_IN_3_DAYS = {"event": "Product Viewed", "where": [{"property": "product_id", "op": "eq", "value": "X"}],
                            "count": {"op": "gte", "value": 3}, "within": "P3D"}
CART_NOT_BOUGHT = {"all": [{"event": "Product Added", "count": {"op": "gte", "value": 1}, "within": "PT1H"},
                           {"event": "Order Completed", "absent": True, "within": "PT1H"}]}
CHURN_RISK = {"last_seen": {"op": "more_than", "ago": "P3D"}}
DORMANT = {"event": "Order Completed", "absent": True, "within": "P90D"}
VIP = {"any": [{"event": "Order Completed", "count": {"op": "gte", "value": 3}, "within": "P30D"},
               {"event": "Order Completed", "sum": "revenue", "op": "gte", "value": 1_000_000, "within": "P30D"}]}


def test_the_marketers_examples_parse():
    viewed = rules.parse(VIEWED_3_TIMES_IN_3_DAYS)
    assert viewed == rules.EventCondition("Product Viewed", (rules.PropertyFilter("product_id", "eq", "X"),),
                                          "count", "gte", 3, within=timedelta(days=3))
    cart = rules.parse(CART_NOT_BOUGHT)
    assert isinstance(cart, rules.All) and cart.children[1].op == "eq" and cart.children[1].value == 0
    assert rules.parse(CHURN_RISK) == rules.LastSeen("more_than", timedelta(days=3))
    assert rules.parse(DORMANT).within == timedelta(days=90)
    vip = rules.parse(VIP)
    assert vip.children[1].measure == "sum" and vip.children[1].property == "revenue"


def test_traits_dates_rfm_and_segment_references_parse():
    tree = {"all": [{"trait": "plan", "op": "in", "value": ["pro", "team"]},
                    {"trait": "birthday", "op": "anniversary_within", "days": 7},
                    {"trait": "signup_at", "op": "before", "ago": "P365D"},
                    {"not": {"rfm": "hibernating"}},
                    {"rfm": {"score": "m", "op": "gte", "value": 4}},
                    {"event": "Signed Up", "first": {"op": "within", "ago": "P7D"}},
                    {"segment": "seg-vip"}]}
    parsed = rules.parse(tree)
    assert parsed.children[1] == rules.TraitCondition("birthday", "anniversary_within", days=7)
    assert parsed.children[3] == rules.Not(rules.RfmCondition(group="hibernating"))
    assert rules.referenced_segments(parsed) == {"seg-vip"}


@pytest.mark.parametrize("tree,field,reason", [
    ({"all": [CHURN_RISK, DORMANT, {"event": "X", "count": {"op": "gte", "value": 1}, "within": "3 days"}]},
     "rules.all[2].within", "expected an ISO-8601 duration"),
    ({"all": []}, "rules.all", "non-empty array"),
    ({"any": [{"trait": "plan", "op": "like", "value": "p%"}]}, "rules.any[0].op", "unknown 'like'"),
    ({"event": "X", "where": [{"property": "sku", "op": "regex", "value": "."}], "absent": True},
     "rules.where[0].op", "unknown 'regex'"),
    ({"event": "X", "count": {"op": "gte", "value": -1}}, "rules.count.value", "whole number"),
    ({"event": "X", "count": {"op": "gte", "value": 1}, "sum": "revenue"}, "rules", "exactly one of"),
    ({"trait": "plan", "op": "in", "value": "pro"}, "rules.value", "non-empty array"),
    ({"trait": "plan", "op": "eq"}, "rules.value", "needs a value"),
    ({"last_seen": {"op": "more_than", "ago": "-P3D"}}, "rules.last_seen.ago", "ISO-8601 duration"),
    ({"rfm": "royalty"}, "rules.rfm", "unknown 'royalty'"),
    ({"not": {"trait": "a", "op": "exists"}, "trait": "b"}, "rules.trait", "not allowed here"),
    ({"where": []}, "rules", "expected one of all, any"),
    ([{"trait": "a", "op": "exists"}], "rules", "expected a rule object"),
    ({"event": "X", "first": {"op": "within", "ago": "P1D"}, "within": "P1D"}, "rules.within", "first.ago"),
])
def test_malformed_trees_name_the_offending_node(tree, field, reason):
    with pytest.raises(InvalidArgument) as err:
        rules.parse(tree)
    assert err.value.field == field
    assert reason in err.value.message and err.value.message.startswith(f"{field}: ")


def test_too_deep_a_tree_is_refused():
    tree = {"trait": "a", "op": "exists"}
    for _ in range(20):
        tree = {"not": tree}
    with pytest.raises(InvalidArgument, match="nested deeper"):
        rules.parse(tree)


def test_segment_reference_cycles_are_refused():
    stored = {"a": rules.parse({"segment": "b"}), "b": rules.parse({"all": [CHURN_RISK, {"segment": "c"}]}),
              "c": rules.parse(DORMANT)}
    rules.check_no_cycle("a", stored["a"], stored.get)  # a → b → c: fine
    with pytest.raises(InvalidArgument, match=r"cycle \(c → a → b → c\)"):
        rules.check_no_cycle("c", rules.parse({"segment": "a"}), stored.get)
    with pytest.raises(InvalidArgument, match="cycle"):
        rules.check_no_cycle("d", rules.parse({"any": [DORMANT, {"segment": "d"}]}), stored.get)
    with pytest.raises(InvalidArgument, match="unknown segment 'zzz'"):
        rules.check_no_cycle("d", rules.parse({"segment": "zzz"}), stored.get)


def test_a_list_valued_property_filter_can_key_a_series():
    from services.segment.engine import Catalog, SegmentDef

    rule = rules.parse({"event": "A", "where": [{"property": "x", "op": "in", "value": [1, 2]}],
                        "count": {"op": "gte", "value": 1}})
    catalog = Catalog([SegmentDef("s", 1, rule)])
    assert catalog.needed_keys({"s"})
