"""Management with the admin key: lookups, events, consent, GDPR, policy, audit log."""

import httpx


async def identify(ws, **body):
    r = await ws.tracking.post("/v1/identify", json=body)
    assert r.status_code == 200, r.text


async def the_profile(ws, **identifier) -> dict:
    r = await ws.admin.get("/v1/profiles", params=identifier)
    assert r.status_code == 200, r.text
    (profile,) = r.json()["profiles"]
    return profile


async def test_lookup_by_every_identifier_finds_the_same_profile(workspace):
    await identify(workspace, userId="kim", anonymousId="anon-k",
                   traits={"email": "Kim@Shop.kr", "phone": "+82 10-2222-3333"},
                   context={"device": {"token": "apns-token-1"}})
    by_user = await the_profile(workspace, userId="kim")
    for identifier in ({"anonymousId": "anon-k"}, {"email": "kim@shop.kr"}, {"phone": "010-2222-3333"},
                       {"deviceToken": "apns-token-1"}):
        assert (await the_profile(workspace, **identifier))["id"] == by_user["id"]
    r = await workspace.admin.get(f"/v1/profiles/{by_user['id']}")
    assert r.status_code == 200 and r.json()["traits"]["email"] == "Kim@Shop.kr"


async def test_lookup_needs_exactly_one_identifier(workspace):
    r = await workspace.admin.get("/v1/profiles", params={"userId": "a", "email": "b@c.d"})
    assert r.status_code == 422
    r = await workspace.admin.get("/v1/profiles", params={"email": "not-an-email"})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "email"}


async def test_events_page_newest_first_with_a_cursor(workspace):
    batch = [{"type": "track", "userId": "pager", "event": f"E{i}",
              "timestamp": f"2026-11-01T10:{i:02d}:00Z"} for i in range(7)]
    await workspace.tracking.post("/v1/batch", json={"batch": batch})
    profile = await the_profile(workspace, userId="pager")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await workspace.admin.get(f"/v1/profiles/{profile['id']}/events", params=params)).json()
        seen += [e["event"] for e in page["events"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [f"E{i}" for i in reversed(range(7))]


async def test_consent_is_recorded_per_channel_and_purpose_with_time_and_source(workspace):
    await identify(workspace, userId="consent-1")
    profile = await the_profile(workspace, userId="consent-1")
    body = {"channels": {"sms": {"granted": True, "at": "2026-10-01T00:00:00Z", "source": "signup_form"},
                         "kakao": {"granted": False, "source": "settings_page"}},
            "advertising": {"granted": True, "at": "2026-10-01T00:00:00Z", "source": "signup_form"},
            "night_advertising": {"granted": False, "source": "signup_form"}}
    r = await workspace.admin.put(f"/v1/profiles/{profile['id']}/consent", json=body)
    assert r.status_code == 200, r.text
    consent = r.json()["consent"]
    assert consent["channel:sms"] == {"granted": True, "at": "2026-10-01T00:00:00Z", "source": "signup_form"}
    assert consent["channel:kakao"]["granted"] is False
    assert consent["ads:sms"]["granted"] is True and consent["ads:email"]["granted"] is True  # every channel
    assert consent["night_advertising"]["granted"] is False


async def test_consent_with_an_unknown_channel_names_the_field_and_changes_nothing(workspace):
    await identify(workspace, userId="consent-2")
    profile = await the_profile(workspace, userId="consent-2")
    body = {"channels": {"sms": {"granted": True, "source": "form"}, "pigeon": {"granted": True, "source": "form"}}}
    r = await workspace.admin.put(f"/v1/profiles/{profile['id']}/consent", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["field"] == "changes[1].purpose"
    assert (await the_profile(workspace, userId="consent-2"))["consent"] == {}
    r = await workspace.admin.put(f"/v1/profiles/{profile['id']}/consent",
                                  json={"night_advertising": {"granted": "maybe"}})
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["error"]["details"]["fields"]} == {"night_advertising.granted",
                                                                            "night_advertising.source"}


async def test_export_holds_everything_and_delete_erases_it(workspace):
    await workspace.tracking.post("/v1/track", json={"anonymousId": "gdpr-a", "event": "Viewed"})
    await identify(workspace, userId="gdpr", anonymousId="gdpr-a", traits={"email": "gdpr@example.com"})
    profile = await the_profile(workspace, userId="gdpr")
    export = (await workspace.admin.get(f"/v1/profiles/{profile['id']}/export")).json()["profile"]
    assert export["profile"]["traits"] == {"email": "gdpr@example.com"}
    assert {("user_id", "gdpr"), ("anonymous_id", "gdpr-a"), ("email", "gdpr@example.com")} <= {
        (i["type"], i["value"]) for i in export["identities"]}
    assert sorted(e["type"] for e in export["events"]) == ["identify", "track"]

    r = await workspace.admin.delete(f"/v1/profiles/{profile['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": True, "eventsErased": 2}
    assert (await workspace.admin.get(f"/v1/profiles/{profile['id']}")).status_code == 404
    for identifier in ({"userId": "gdpr"}, {"anonymousId": "gdpr-a"}, {"email": "gdpr@example.com"}):
        assert (await workspace.admin.get("/v1/profiles", params=identifier)).json()["profiles"] == []


async def test_another_workspaces_profile_is_404(workspace, workspace_store, gateway_url):
    await identify(workspace, userId="private")
    profile = await the_profile(workspace, userId="private")
    _, new = await workspace_store.create("other")
    other_admin = next(k.secret for k in new if k.kind == "admin")
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {other_admin}"}) as other:
        for method, path in [("GET", f"/v1/profiles/{profile['id']}"), ("GET", f"/v1/profiles/{profile['id']}/events"),
                             ("GET", f"/v1/profiles/{profile['id']}/export"), ("DELETE", f"/v1/profiles/{profile['id']}")]:
            r = await other.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
        assert (await other.get("/v1/profiles", params={"userId": "private"})).json()["profiles"] == []
    assert (await the_profile(workspace, userId="private"))["id"] == profile["id"]


async def test_write_key_on_management_is_403(workspace, gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for headers in ({"Authorization": f"Bearer {workspace.write_key}"}, None):
            auth = None if headers else (workspace.write_key, "")
            r = await client.get("/v1/profiles", params={"userId": "x"}, headers=headers, auth=auth)
            assert r.status_code == 403, r.text


async def test_identity_policy_round_trip_and_validation(workspace):
    assert (await workspace.admin.get("/v1/identity-policy")).json() == {"uniqueIdentifiers": []}
    r = await workspace.admin.put("/v1/identity-policy", json={"uniqueIdentifiers": ["phone", "email"]})
    assert r.json() == {"uniqueIdentifiers": ["email", "phone"]}
    r = await workspace.admin.put("/v1/identity-policy", json={"uniqueIdentifiers": ["user_id"]})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "unique_identifiers[0]"}


async def test_shared_email_merges_two_users_only_under_the_unique_policy(workspace):
    await identify(workspace, userId="p1", traits={"email": "shared@example.com"})
    await identify(workspace, userId="p2", traits={"email": "shared@example.com"})
    r = await workspace.admin.get("/v1/profiles", params={"email": "shared@example.com"})
    assert len(r.json()["profiles"]) == 2
    await workspace.admin.put("/v1/identity-policy", json={"uniqueIdentifiers": ["email"]})
    await identify(workspace, userId="p3", traits={"email": "shared@example.com"})
    ids = {p["id"] for p in (await workspace.admin.get("/v1/profiles", params={"email": "shared@example.com"})).json()["profiles"]}
    assert len(ids) == 1
    merged = (await workspace.admin.get(f"/v1/profiles/{ids.pop()}")).json()
    assert {i["value"] for i in merged["identities"] if i["type"] == "user_id"} == {"p1", "p2", "p3"}


async def test_audit_log_records_each_read_with_its_key(workspace):
    await identify(workspace, userId="audited")
    profile = await the_profile(workspace, userId="audited")
    await workspace.admin.get(f"/v1/profiles/{profile['id']}")
    await workspace.admin.get(f"/v1/profiles/{profile['id']}/events")
    entries = (await workspace.admin.get("/v1/audit", params={"profileId": profile["id"]})).json()["entries"]
    assert [e["action"] for e in entries] == ["events.read", "profile.read", "profile.lookup"]
    assert all(e["keyId"] and workspace.admin_key.split("_")[2] == e["keyId"] for e in entries)


async def test_a_history_larger_than_a_grpc_message_pages_and_exports(workspace):
    pad = "x" * 30_000
    for start in range(0, 160, 10):
        batch = [{"type": "track", "userId": "long-history", "event": f"E{i}", "properties": {"pad": pad}}
                 for i in range(start, start + 10)]
        assert (await workspace.tracking.post("/v1/batch", json={"batch": batch})).json()["stored"] == 10
    profile = await the_profile(workspace, userId="long-history")
    page = await workspace.admin.get(f"/v1/profiles/{profile['id']}/events", params={"limit": 500})
    assert page.status_code == 200 and len(page.json()["events"]) == 160
    export = await workspace.admin.get(f"/v1/profiles/{profile['id']}/export")
    assert export.status_code == 200 and len(export.json()["profile"]["events"]) == 160


async def test_bad_consent_times_and_cursors_name_the_field(workspace):
    await identify(workspace, userId="odd-times")
    profile = await the_profile(workspace, userId="odd-times")
    r = await workspace.admin.put(f"/v1/profiles/{profile['id']}/consent",
                                  json={"night_advertising": {"granted": True, "at": "0999-01-01T00:00:00Z",
                                                              "source": "x"}})
    assert r.status_code == 422  # the gateway names the field as the caller wrote it
    assert [f["field"] for f in r.json()["error"]["details"]["fields"]] == ["night_advertising.at"]
    assert (await workspace.admin.get(f"/v1/profiles/{profile['id']}")).status_code == 200
    r = await workspace.admin.get("/v1/audit", params={"cursor": "9" * 30})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "cursor"}


async def test_a_lookup_that_finds_no_one_is_audited_too(workspace):
    assert (await workspace.admin.get("/v1/profiles", params={"email": "nobody@example.com"})).json()["profiles"] == []
    (entry,) = (await workspace.admin.get("/v1/audit", params={"action": "profile."})).json()["entries"]
    assert entry["action"] == "profile.lookup" and entry["profileId"] is None
    assert entry["detail"] == {"identifier_type": "email", "found": 0}
