"""The `api` function driven from its own contract: schemathesis reads the OpenAPI document
(http/openapi.py; the server must serve exactly it at `/openapi.json`) and sends generated
requests, valid ones and broken ones, to every operation of the server over HTTP. No answer may
be a 500; every answer must match the document (status, content type, schema); bad input must be
refused with a 4xx, unsupported methods with 405, calls without the token with 401."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                               response_headers_conformance, response_schema_conformance,
                                               status_code_conformance, unsupported_method)

from mailbridge.http import openapi
from mailbridge.services import mailboxes, sync
from tests.helpers import connect_mailbox, deliver, make_email, make_mail, make_services

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, unsupported_method, ignored_auth]


SERVER = "http://server.invalid/api"  # replaced by the test server's URL in every call
schema = schemathesis.openapi.from_dict(openapi.document(SERVER))


@pytest.fixture
def desk(api_server, mb_env, fake):
    """Tickets 1 and 2 (the second with an attachment, the first with a suggested participant),
    so that generated ids reach real tickets as well as missing ones."""
    suffix = uuid.uuid4().hex[:8]
    name, address = f"contract-{suffix}", f"contract-{suffix}@acme.example"
    services = make_services()
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    deliver(fake.url, address, make_mail("ann@customer.example", address, "Printer jammed"))
    mail = make_email("bob@customer.example", address, "Invoice")
    mail.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="invoice.pdf")
    deliver(fake.url, address, bytes(mail))
    sync.poll(services, name)
    services.store.update_ticket("1", {"suggested_participants": [
        {"email": "boss@customer.example", "suggested_by": "ann@customer.example", "suggested_at": "2024-05-01"}]})
    return api_server


def test_the_server_serves_this_document(api_server, mb_env):
    served = api_server.call("GET", "/openapi.json").json()
    assert served == openapi.document(api_server.url)


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_every_answer_keeps_the_contract_and_none_is_a_500(case, desk):
    case.call_and_validate(base_url=desk.url, headers=desk.auth(), checks=CHECKS)
