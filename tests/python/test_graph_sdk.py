"""Microsoft's msgraph-sdk for Python, an independent Graph client, against the graph-emulator binary:
create, read, update and delete of contacts and contact folders, entity tags (If-Match), delta round
trips with paging, $batch, single-value extended properties with $filter and $expand, and
change-notification subscriptions (the validation handshake, a notification, renewal, deletion).

Run from the repository root after `cargo build -p graph-emulator`:

    pip install -r tests/python/requirements.txt
    pytest tests/python/test_graph_sdk.py

The binary is taken from $GRAPH_EMULATOR_BIN, else $CARGO_TARGET_DIR or target/ (debug, then release).
When $GRAPH_TRACE_DIR is set, the emulator dumps what it receives and answers there (checked against
the Graph schema by scripts/validate-graph-traces.py).

The SDK authenticates through azure-identity's credential interface; the credential here performs
the client-credentials grant against the emulator's token endpoint itself (azure-identity's own
ClientSecretCredential insists on an HTTPS authority with instance discovery, which a loopback
emulator does not offer).
"""

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.contact_folder import ContactFolder
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.physical_address import PhysicalAddress
from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
from msgraph.generated.users.item.contact_folders.item.contacts.contacts_request_builder import ContactsRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

REPO = Path(__file__).resolve().parents[2]
SECRET = "sdk-test-secret"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The origin stamp property exchange-sync writes (over EWS and over Graph alike).
STAMP_ID = "String {c87d849c-6c0b-43ec-9a40-fead13d50b3c} Name OriginStamp"


def emulator_binary():
    if os.environ.get("GRAPH_EMULATOR_BIN"):
        return Path(os.environ["GRAPH_EMULATOR_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "graph-emulator"
        if candidate.exists():
            return candidate
    pytest.skip("graph-emulator is not built (cargo build -p graph-emulator)")


@pytest.fixture(scope="module")
def emulator():
    proc = subprocess.Popen(
        [str(emulator_binary()), "--listen", "127.0.0.1:0", "--client-secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = proc.stdout.readline().strip()
        authority = proc.stdout.readline().strip()
        ids = proc.stdout.readline().strip()
        assert endpoint.startswith("Graph endpoint: http://127.0.0.1:"), endpoint
        client_id = ids.split("client id: ", 1)[1]
        yield {"url": endpoint.split(": ", 1)[1], "authority": authority.split(": ", 1)[1], "client_id": client_id}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class ClientSecretGrant:
    """An azure-core async token credential doing the client-credentials grant against an authority."""

    def __init__(self, authority, client_id, secret):
        self.token_url = f"{authority}/oauth2/v2.0/token"
        self.client_id = client_id
        self.secret = secret
        self.requests = 0

    async def get_token(self, *scopes, **kwargs):
        self.requests += 1
        async with httpx.AsyncClient() as http:
            r = await http.post(self.token_url, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.secret, "scope": GRAPH_SCOPE,
            })
        r.raise_for_status()
        body = r.json()
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))

    async def close(self):
        pass


def graph(emulator, secret=SECRET):
    credential = ClientSecretGrant(emulator["authority"], emulator["client_id"], secret)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{emulator['url']}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def run(coro):
    return asyncio.run(coro)


async def new_folder(client, mailbox):
    return await client.users.by_user_id(mailbox).contact_folders.post(
        ContactFolder(display_name=f"SDK {uuid.uuid4().hex[:8]}"))


def jane(n=0):
    return Contact(
        given_name="Jane", surname=f"Doe{n}", company_name="Contoso", job_title="Buyer",
        email_addresses=[EmailAddress(address=f"jane{n}@contoso.test", name="Jane")],
        business_phones=["+1 555 0100"], mobile_phone="+1 555 0199",
        business_address=PhysicalAddress(street="1 Main St", city="Oslo", postal_code="0150", country_or_region="Norway"),
        categories=["Customers"], personal_notes="Met at the fair.",
    )


def test_contacts_round_trip_create_read_update_delete(emulator):
    async def scenario():
        client = graph(emulator)
        me = client.users.by_user_id("alice@contoso.test")
        folder = await new_folder(client, "alice@contoso.test")
        contacts = me.contact_folders.by_contact_folder_id(folder.id).contacts
        created = await contacts.post(jane())
        assert created.id and created.change_key
        read = await contacts.by_contact_id(created.id).get()
        assert (read.given_name, read.surname, read.company_name) == ("Jane", "Doe0", "Contoso")
        assert read.email_addresses[0].address == "jane0@contoso.test"
        assert read.business_address.city == "Oslo" and read.business_address.country_or_region == "Norway"
        assert read.business_phones == ["+1 555 0100"] and read.categories == ["Customers"]
        assert read.personal_notes == "Met at the fair."
        updated = await contacts.by_contact_id(created.id).patch(Contact(job_title="Head of buying"))
        assert updated.job_title == "Head of buying" and updated.given_name == "Jane"
        assert updated.change_key != created.change_key, "an update gives a new change key"
        listed = await contacts.get()
        assert [c.id for c in listed.value] == [created.id]
        await contacts.by_contact_id(created.id).delete()
        with pytest.raises(ODataError) as gone:
            await contacts.by_contact_id(created.id).get()
        assert gone.value.response_status_code == 404
        assert gone.value.error.code == "ErrorItemNotFound"
    run(scenario())


def test_a_stale_entity_tag_is_refused_with_412(emulator):
    async def scenario():
        client = graph(emulator)
        folder = await new_folder(client, "bob@contoso.test")
        contacts = client.users.by_user_id("bob@contoso.test").contact_folders.by_contact_folder_id(folder.id).contacts
        created = await contacts.post(jane(1))
        await contacts.by_contact_id(created.id).patch(Contact(job_title="Edited first"))
        stale = RequestConfiguration()
        stale.headers = HeadersCollection()
        stale.headers.add("If-Match", f'W/"{created.change_key}"')
        with pytest.raises(ODataError) as refused:
            await contacts.by_contact_id(created.id).patch(Contact(job_title="Edited late"), request_configuration=stale)
        assert refused.value.response_status_code == 412
        with pytest.raises(ODataError) as refused:
            await contacts.by_contact_id(created.id).delete(request_configuration=stale)
        assert refused.value.response_status_code == 412
        still = await contacts.by_contact_id(created.id).get()
        assert still.job_title == "Edited first", "a refused write changed the contact"
    run(scenario())


def test_extended_property_written_filtered_and_expanded(emulator):
    async def scenario():
        client = graph(emulator)
        folder = await new_folder(client, "carol@contoso.test")
        contacts = client.users.by_user_id("carol@contoso.test").contact_folders.by_contact_folder_id(folder.id).contacts
        stamped = jane(2)
        stamped.single_value_extended_properties = [SingleValueLegacyExtendedProperty(id=STAMP_ID, value="xsync1:5:sales:e-42")]
        mine = await contacts.post(stamped)
        await contacts.post(jane(3))  # a user's own contact, without a stamp
        query = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
            filter=f"singleValueExtendedProperties/any(ep: ep/id eq '{STAMP_ID}' and ep/value eq 'xsync1:5:sales:e-42')",
            expand=[f"singleValueExtendedProperties($filter=id eq '{STAMP_ID}')"],
        )
        found = await contacts.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert [c.id for c in found.value] == [mine.id], "only the stamped contact matches"
        props = found.value[0].single_value_extended_properties
        assert [(p.id.lower(), p.value) for p in props] == [(STAMP_ID.lower(), "xsync1:5:sales:e-42")]
    run(scenario())


def test_delta_round_trips_page_and_report_changes_and_removals(emulator):
    async def scenario():
        client = graph(emulator)
        folder = await new_folder(client, "dave@contoso.test")
        in_folder = client.users.by_user_id("dave@contoso.test").contact_folders.by_contact_folder_id(folder.id)
        ids = [(await in_folder.contacts.post(jane(n))).id for n in range(25)]

        async def full_round(delta_link=None):
            builder = in_folder.contacts.delta
            page = await (builder.with_url(delta_link).get() if delta_link else builder.get())
            seen, pages = [], 1
            while True:
                seen.extend(page.value)
                if page.odata_next_link:
                    page = await builder.with_url(page.odata_next_link).get()
                    pages += 1
                    continue
                return seen, page.odata_delta_link, pages

        first, link, pages = await full_round()
        assert sorted(c.id for c in first) == sorted(ids)
        assert pages == 3, "25 changes in pages of 10"
        assert link and "$deltatoken=" in link
        await in_folder.contacts.by_contact_id(ids[0]).patch(Contact(job_title="Changed"))
        await in_folder.contacts.by_contact_id(ids[1]).delete()
        added = await in_folder.contacts.post(jane(99))
        second, link2, _ = await full_round(link)
        removed = [c.id for c in second if c.additional_data.get("@removed")]
        changed = {c.id: c for c in second if not c.additional_data.get("@removed")}
        assert removed == [ids[1]]
        assert set(changed) == {ids[0], added.id}
        assert changed[ids[0]].job_title == "Changed"
        third, _, _ = await full_round(link2)
        assert third == [], "nothing changed since the last delta link"
    run(scenario())


def test_batch_of_creates_reads_and_a_failing_part(emulator):
    async def scenario():
        client = graph(emulator)
        folder = await new_folder(client, "alice@contoso.test")
        contacts = client.users.by_user_id("alice@contoso.test").contact_folders.by_contact_folder_id(folder.id).contacts
        batch = BatchRequestContent()
        for n in range(3):
            info = contacts.to_post_request_information(jane(10 + n))
            batch.add_request(f"create{n}", BatchRequestItem(info, id=f"create{n}"))
        missing = contacts.by_contact_id("AAMkAGI-not-there").to_get_request_information()
        batch.add_request("missing", BatchRequestItem(missing, id="missing"))
        answer = await client.batch.post(batch)
        codes = answer.get_response_status_codes()
        assert codes == {"create0": 201, "create1": 201, "create2": 201, "missing": 404}, codes
        listed = await contacts.get()
        assert sorted(c.surname for c in listed.value) == ["Doe10", "Doe11", "Doe12"]
    run(scenario())


def test_a_wrong_secret_gets_no_token(emulator):
    async def scenario():
        client = graph(emulator, secret="wrong")
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.users.by_user_id("alice@contoso.test").contact_folders.get()
        assert refused.value.response.status_code == 401
        assert refused.value.response.json()["error"] == "invalid_client"
    run(scenario())


# Calendars and events: create, read, update, delete, series with their instances, a moved and a
# cancelled occurrence, calendarView delta rounds, $batch, and the origin stamp on events.

from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.calendar import Calendar
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.day_of_week import DayOfWeek
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.location import Location
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.item.calendars.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.calendars.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

BERLIN = "W. Europe Standard Time"


async def new_calendar(client, mailbox):
    return await client.users.by_user_id(mailbox).calendars.post(Calendar(name=f"SDK {uuid.uuid4().hex[:8]}"))


def when(text, zone=BERLIN):
    return DateTimeTimeZone(date_time=text, time_zone=zone)


def meeting(subject="Planning", start="2026-03-03T10:00:00", end="2026-03-03T11:00:00"):
    return Event(
        subject=subject, start=when(start), end=when(end), location=Location(display_name="Room 1"),
        body=ItemBody(content_type=BodyType.Text, content="Agenda."), categories=["Company"],
    )


def weekly(count=5):
    event = meeting("Stand-up", "2026-03-16T09:00:00", "2026-03-16T09:15:00")
    event.recurrence = PatternedRecurrence(
        pattern=RecurrencePattern(type=RecurrencePatternType.Weekly, interval=1, days_of_week=[DayOfWeek.Monday]),
        range=RecurrenceRange(type=RecurrenceRangeType.Numbered, start_date=__import__("datetime").date(2026, 3, 16),
                              number_of_occurrences=count),
    )
    return event


def window(builder_cls, start="2026-03-01T00:00:00Z", end="2026-05-01T00:00:00Z"):
    params = getattr(builder_cls, builder_cls.__name__ + "GetQueryParameters")(start_date_time=start, end_date_time=end)
    return RequestConfiguration(query_parameters=params)


def test_events_round_trip_create_read_update_delete(emulator):
    async def scenario():
        client = graph(emulator)
        cal = await new_calendar(client, "alice@contoso.test")
        events = client.users.by_user_id("alice@contoso.test").calendars.by_calendar_id(cal.id).events
        created = await events.post(meeting())
        assert created.id and created.change_key and created.type == EventType.SingleInstance
        read = await events.by_event_id(created.id).get()
        assert read.subject == "Planning" and read.location.display_name == "Room 1"
        assert read.original_start_time_zone == BERLIN
        assert read.start.time_zone == "UTC" and read.start.date_time.startswith("2026-03-03T09:00:00"), read.start
        assert read.categories == ["Company"] and read.body.content == "Agenda."
        updated = await events.by_event_id(created.id).patch(Event(subject="Planning (moved)", start=when("2026-03-04T10:00:00"),
                                                                   end=when("2026-03-04T11:00:00")))
        assert updated.subject == "Planning (moved)" and updated.change_key != created.change_key
        stale = RequestConfiguration()
        stale.headers = HeadersCollection()
        stale.headers.add("If-Match", f'W/"{created.change_key}"')
        with pytest.raises(ODataError) as refused:
            await events.by_event_id(created.id).patch(Event(subject="late"), request_configuration=stale)
        assert refused.value.response_status_code == 412
        await events.by_event_id(created.id).delete()
        with pytest.raises(ODataError) as gone:
            await events.by_event_id(created.id).get()
        assert gone.value.response_status_code == 404
    run(scenario())


def test_a_series_with_a_moved_and_a_cancelled_occurrence(emulator):
    async def scenario():
        client = graph(emulator)
        cal = await new_calendar(client, "bob@contoso.test")
        events = client.users.by_user_id("bob@contoso.test").calendars.by_calendar_id(cal.id).events
        master = await events.post(weekly())
        assert master.type == EventType.SeriesMaster
        instances = (await events.by_event_id(master.id).instances.get(window(InstancesRequestBuilder))).value
        assert [i.start.date_time[:19] for i in instances] == [
            "2026-03-16T08:00:00", "2026-03-23T08:00:00", "2026-03-30T07:00:00", "2026-04-06T07:00:00", "2026-04-13T07:00:00",
        ], "09:00 in Berlin, before and after the change to summer time"
        assert all(i.type == EventType.Occurrence and i.series_master_id == master.id for i in instances)
        moved = await events.by_event_id(instances[1].id).patch(Event(start=when("2026-03-24T14:00:00"), end=when("2026-03-24T14:15:00"),
                                                                      subject="Stand-up (Tuesday)"))
        assert moved.type == EventType.Exception
        await events.by_event_id(instances[2].id).delete()
        query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(expand=["exceptionOccurrences"])
        read = await events.by_event_id(master.id).get(request_configuration=RequestConfiguration(query_parameters=query))
        assert read.change_key != master.change_key, "occurrence edits change the master"
        assert read.cancelled_occurrences == [f"OID.{master.id}.2026-03-30"]
        assert [x.subject for x in read.exception_occurrences] == ["Stand-up (Tuesday)"]
        after = (await events.by_event_id(master.id).instances.get(window(InstancesRequestBuilder))).value
        assert len(after) == 4
        listed = await events.get()
        assert [e.id for e in listed.value] == [master.id], "the events collection holds the master only"
    run(scenario())


def test_calendar_view_delta_rounds_report_instances_and_removals(emulator):
    async def scenario():
        client = graph(emulator)
        mailbox = "carol@contoso.test"
        default = client.users.by_user_id(mailbox).calendar.events
        single = await default.post(meeting())
        master = await default.post(weekly(3))
        view = client.users.by_user_id(mailbox).calendar_view.delta

        async def full_round(link=None):
            page = await (view.with_url(link).get() if link else view.get(window(DeltaRequestBuilder)))
            seen = []
            while True:
                seen.extend(page.value)
                if page.odata_next_link:
                    page = await view.with_url(page.odata_next_link).get()
                    continue
                return seen, page.odata_delta_link

        first, link = await full_round()
        assert sorted(e.type.value for e in first) == ["occurrence"] * 3 + ["singleInstance"]
        assert link and "$deltatoken=" in link
        await default.by_event_id(single.id).delete()
        second, link2 = await full_round(link)
        assert [e.id for e in second if e.additional_data.get("@removed")] == [single.id]
        third, _ = await full_round(link2)
        assert third == [], "nothing changed since the last delta link"
        assert master.id
    run(scenario())


def test_event_batch_and_origin_stamp_filter(emulator):
    async def scenario():
        client = graph(emulator)
        cal = await new_calendar(client, "dave@contoso.test")
        events = client.users.by_user_id("dave@contoso.test").calendars.by_calendar_id(cal.id).events
        batch = BatchRequestContent()
        for n in range(3):
            e = meeting(f"Batch {n}")
            if n == 0:
                e.single_value_extended_properties = [SingleValueLegacyExtendedProperty(id=STAMP_ID, value="xsync1:8:cal:e-1")]
            batch.add_request(f"create{n}", BatchRequestItem(events.to_post_request_information(e), id=f"create{n}"))
        missing = events.by_event_id("AAMkEV-not-there").to_get_request_information()
        batch.add_request("missing", BatchRequestItem(missing, id="missing"))
        answer = await client.batch.post(batch)
        codes = answer.get_response_status_codes()
        assert codes == {"create0": 201, "create1": 201, "create2": 201, "missing": 404}, codes
        query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
            filter=f"singleValueExtendedProperties/any(ep: ep/id eq '{STAMP_ID}' and ep/value eq 'xsync1:8:cal:e-1')",
            expand=[f"singleValueExtendedProperties($filter=id eq '{STAMP_ID}')"],
        )
        found = await events.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert [e.subject for e in found.value] == ["Batch 0"]
        assert found.value[0].single_value_extended_properties[0].value == "xsync1:8:cal:e-1"


class NotificationReceiver:
    """A subscriber's endpoint on loopback: echoes Graph's validation token as text/plain (or
    refuses it when told to) and keeps the notification collections posted to it."""

    def __init__(self, echo=True):
        import http.server
        import threading
        from urllib.parse import parse_qs, urlparse

        received = self.received = []
        self.validations = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                query = parse_qs(urlparse(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    receiver.validations += 1
                    token = query["validationToken"][0].encode() if echo else b"not the token"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(token)))
                    self.end_headers()
                    self.wfile.write(token)
                    return
                import json
                received.append(json.loads(body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_subscriptions_validate_the_endpoint_and_notifications_arrive(emulator):
    from datetime import datetime, timedelta, timezone

    from msgraph.generated.models.subscription import Subscription

    async def scenario():
        client = graph(emulator)
        folder = await new_folder(client, "carol@contoso.test")
        receiver = NotificationReceiver()
        try:
            expiry = datetime.now(timezone.utc) + timedelta(hours=2)
            resource = f"users/carol@contoso.test/contactFolders/{folder.id}/contacts"
            made = await client.subscriptions.post(Subscription(
                change_type="created,updated,deleted", notification_url=receiver.url,
                lifecycle_notification_url=receiver.url, resource=resource,
                expiration_date_time=expiry, client_state="sdk-state"))
            assert made.id and made.resource == resource and made.client_state == "sdk-state"
            assert receiver.validations == 2, "the notification and lifecycle URLs are both validated"
            contacts = client.users.by_user_id("carol@contoso.test").contact_folders.by_contact_folder_id(folder.id).contacts
            created = await contacts.post(jane(7))
            for _ in range(100):
                if receiver.received:
                    break
                await asyncio.sleep(0.05)
            note = receiver.received[0]["value"][0]
            assert note["subscriptionId"] == made.id and note["clientState"] == "sdk-state"
            assert note["changeType"] == "created" and note["resourceData"]["id"] == created.id
            renewed = await client.subscriptions.by_subscription_id(made.id).patch(
                Subscription(expiration_date_time=expiry + timedelta(hours=1)))
            assert renewed.expiration_date_time > made.expiration_date_time
            await client.subscriptions.by_subscription_id(made.id).delete()
            with pytest.raises(ODataError) as gone:
                await client.subscriptions.by_subscription_id(made.id).get()
            assert gone.value.response_status_code == 404
        finally:
            receiver.close()

        refusing = NotificationReceiver(echo=False)
        try:
            with pytest.raises(ODataError) as refused:
                await client.subscriptions.post(Subscription(
                    change_type="updated", notification_url=refusing.url, resource=resource,
                    expiration_date_time=datetime.now(timezone.utc) + timedelta(minutes=30)))
            assert refused.value.response_status_code == 400
            assert refused.value.error.code == "ValidationError"
        finally:
            refusing.close()
    run(scenario())
