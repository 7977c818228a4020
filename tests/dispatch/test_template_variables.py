"""Templates are checked at save against the variables sends have: `profile` is the traits
and `event` the event's properties themselves, so `event.properties.seq` never exists."""

import pytest


@pytest.mark.parametrize("channel, fields, field, variable", [
    ("inapp", {"title": "Order", "body": "Order #{{ event.properties.seq }}"}, "channels.inapp.body",
     "event.properties.seq"),
    ("webhook", {"body": {"order": {"seq": "{{ event.properties['seq'] }}"}}}, "channels.webhook.body.order.seq",
     "event.properties.seq"),
    ("sms", {"text": "{% if profile.traits.vip %}VIP{% endif %}"}, "channels.sms.text", "profile.traits.vip"),
])
async def test_a_variable_no_send_has_is_refused_at_save_naming_field_and_variable(workspace, channel, fields,
                                                                                  field, variable):
    response = await workspace.admin.put("/v1/templates/order", json={"channels": {channel: fields}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field and repr(variable) in error["message"], error
    assert (await workspace.admin.get("/v1/templates/order")).status_code == 404  # nothing saved


async def test_a_template_says_what_it_reads_and_a_guarded_variable_is_not_needed(workspace):
    response = await workspace.admin.put("/v1/templates/order", json={"channels": {"inapp": {
        "title": "{{ profile.name }}님",
        "body": "#{{ event.seq }} {{ event.note | default('') }} "
                "{% if journey.variant is defined %}{{ journey.variant }}{% endif %}"}}})
    assert response.status_code == 200, response.text
    assert response.json()["variables"] == ["event.seq", "profile.name"]
    assert (await workspace.admin.get("/v1/templates/order")).json()["variables"] == ["event.seq", "profile.name"]
