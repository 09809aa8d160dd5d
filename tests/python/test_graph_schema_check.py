"""The Graph schema check (scripts/validate-graph-traces.py) finds what it is there to find: a property
a type does not declare, a value of the wrong JSON type, a null where the schema forbids it, an error
answer without Graph's shape, a URL that does not resolve, and violations inside $batch parts; and it
accepts well-formed exchanges. Needs the schema at ../shared/graph-schema (or $GRAPH_SCHEMA_DIR)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "validate-graph-traces.py"
SCHEMA = Path(os.environ.get("GRAPH_SCHEMA_DIR", REPO.parent / "shared" / "graph-schema"))

pytestmark = pytest.mark.skipif(not (SCHEMA / "graph-v1.0-csdl.xml").exists(), reason="Graph schema not present")

GOOD_CONTACT = {
    "@odata.etag": 'W/"EQAAAB1"', "id": "AAMk1", "changeKey": "EQAAAB1", "givenName": "Jane",
    "birthday": "1980-05-04T00:00:00Z", "businessPhones": ["+1 555"], "emailAddresses": [{"address": "j@x.test"}],
    "homeAddress": {"city": "Oslo"}, "singleValueExtendedProperties": [{"id": "String 0x3a24", "value": "x"}],
}


def check(tmp_path, *exchanges):
    for i, e in enumerate(exchanges):
        (tmp_path / f"t{i}.json").write_text(json.dumps(e))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def get_contact(response, status=200):
    return {"method": "GET", "url": "/users/a@x.test/contactFolders/F/contacts/AAMk1", "status": status,
            "request": None, "response": response}


def test_well_formed_exchanges_pass(tmp_path):
    delta = {"method": "GET", "url": "/users/a@x.test/contactFolders/F/contacts/delta()?$select=id", "status": 200,
             "request": None, "response": {"value": [GOOD_CONTACT, {"id": "AAMk2", "@removed": {"reason": "deleted"}}],
                                           "@odata.deltaLink": "http://x/v1.0/..."}}
    code, out = check(tmp_path, get_contact(GOOD_CONTACT), delta)
    assert code == 0, out


@pytest.mark.parametrize("bad, expected", [
    ({"nickname": "J"}, "property 'nickname' does not exist on microsoft.graph.contact"),
    ({"givenName": 7}, "is not a valid Edm.String"),
    ({"birthday": "4 May 1980"}, "is not a valid Edm.DateTimeOffset"),
    ({"businessPhones": "+1 555"}, "expected an array"),
    ({"homeAddress": {"town": "Oslo"}}, "property 'town' does not exist on microsoft.graph.physicalAddress"),
    ({"emailAddresses": [{"address": "a", "kind": "work"}]}, "property 'kind' does not exist on microsoft.graph.emailAddress"),
    ({"businessPhones": [None]}, "null for a non-nullable Edm.String"),
])
def test_wrong_properties_and_types_are_found(tmp_path, bad, expected):
    code, out = check(tmp_path, get_contact({**GOOD_CONTACT, **bad}))
    assert code == 1 and expected in out, out


def test_errors_unresolvable_urls_and_batch_parts_are_checked(tmp_path):
    bad_error = get_contact({"message": "gone"}, status=404)
    unknown = {"method": "GET", "url": "/users/a/contactGroups", "status": 200, "request": None, "response": {"value": []}}
    batch = {"method": "POST", "url": "/$batch", "status": 200,
             "request": {"requests": [{"id": "1", "method": "POST", "url": "/users/a/contactFolders/F/contacts",
                                       "body": {"givenName": "A", "favouriteColour": "red"}}]},
             "response": {"responses": [{"id": "1", "status": 201, "body": GOOD_CONTACT}]}}
    code, out = check(tmp_path, bad_error, unknown, batch)
    assert code == 1
    assert "an error answer without error.code" in out
    assert "does not resolve in the schema" in out
    assert "property 'favouriteColour' does not exist on microsoft.graph.contact" in out


def test_an_empty_trace_directory_fails(tmp_path):
    code, out = check(tmp_path)
    assert code == 1 and "no Graph exchanges were traced" in out


NOTIFICATION = {
    "subscriptionId": "0b7f3c52-1d7e-4c1a-9a65-3f1e2d4c5b6a", "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
    "changeType": "updated", "resource": "Users/u/Contacts/AAMk1", "clientState": "s",
    "tenantId": "8f2e8a39-5c1d-4d7e-9d55-0c0ffee00001",
    "resourceData": {"@odata.type": "#Microsoft.Graph.Contact", "@odata.id": "Users/u/Contacts/AAMk1", "id": "AAMk1"},
}


def sent(body):
    return {"type": "microsoft.graph.changeNotificationCollection", "body": body}


def test_notifications_and_subscriptions_are_checked(tmp_path):
    subscription = {"method": "POST", "url": "/subscriptions", "status": 201,
                    "request": {"changeType": "created,updated,deleted", "notificationUrl": "https://x/n",
                                "resource": "users/a/contactFolders/F/contacts",
                                "expirationDateTime": "2030-01-01T00:00:00.000Z", "clientState": "s"},
                    "response": {"id": "0b7f3c52-1d7e-4c1a-9a65-3f1e2d4c5b6a", "changeType": "updated",
                                 "notificationUrl": "https://x/n", "resource": "users/a/contacts",
                                 "expirationDateTime": "2030-01-01T00:00:00Z"}}
    lifecycle = {k: v for k, v in NOTIFICATION.items() if k not in ("changeType", "resourceData")}
    code, out = check(tmp_path, subscription, sent({"value": [NOTIFICATION]}),
                      sent({"value": [{**lifecycle, "lifecycleEvent": "missed"}]}))
    assert code == 0, out


@pytest.mark.parametrize("bad, expected", [
    ({"changeType": "edited"}, "is not a valid microsoft.graph.changeType"),
    ({"subscriptionId": "sub-1"}, "is not a valid Edm.Guid"),
    ({"lifecycleEvent": "expired"}, "is not a valid microsoft.graph.lifecycleEventType"),
    ({"clientSecret": "s"}, "property 'clientSecret' does not exist on microsoft.graph.changeNotification"),
])
def test_wrong_notifications_are_found(tmp_path, bad, expected):
    code, out = check(tmp_path, sent({"value": [{**NOTIFICATION, **bad}]}))
    assert code == 1 and expected in out, out
