"""The control API with the official Python client: a throw-away organization per test,
faults its `RetryConfig` survives, and the journal showing what it sent."""

import json
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest
from tofupilot.v2 import TofuPilot
from tofupilot.v2.utils import BackoffStrategy, RetryConfig


def control(server, method, path, body=None):
    """A control API call; returns (status, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{server.url}/_tofulab{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {server.admin_token}",
                 "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def org(server):
    """A throw-away organization, deleted after the test."""
    status, created = control(server, "POST", "/organizations",
                              {"name": f"Py {uuid.uuid4().hex[:8]}"})
    assert status == 201, created
    yield created
    status, _ = control(server, "DELETE", f"/organizations/{created['id']}")
    assert status == 200


def retrying_client(server, key):
    retries = RetryConfig("backoff", BackoffStrategy(50, 2000, 1.5, 30000),
                          retry_connection_errors=True)
    return TofuPilot(api_key=key, server_url=f"{server.url}/api", retry_config=retries)


def journal(server, org, **filters):
    query = "&".join(f"{k}={v}" for k, v in {"organization_id": org["id"], **filters}.items())
    status, body = control(server, "GET", f"/requests?{query}")
    assert status == 200
    return body["data"]


def test_the_python_client_survives_two_injected_503s(server, org):
    key = org["users"][0]["api_key"]
    status, rule = control(server, "POST", "/faults", {
        "method": "GET", "path": "/api/v2/procedures", "status": 503, "retry_after": 1,
        "when": "before", "times": 2, "organization_id": org["id"]})
    assert status == 201, rule
    try:
        client = retrying_client(server, key)  # kept: the SDK closes its HTTP client when collected
        page = client.procedures.list()
        assert [p.id for p in page.data] == [org["procedures"][0]["id"]]
        entries = journal(server, org, path="/api/v2/procedures")
        assert [e["status"] for e in entries] == [200, 503, 503]
        assert all(e["caller"] == {"kind": "user", "id": org["users"][0]["id"]}
                   for e in entries)
    finally:
        control(server, "DELETE", f"/faults/{rule['id']}")


def test_a_503_after_commit_and_a_retry_with_client_run_ref_make_one_run(server, org):
    key = org["stations"][0]["api_key"]
    status, rule = control(server, "POST", "/faults", {
        "method": "POST", "path": "/api/v2/runs", "status": 503, "when": "after",
        "times": 1, "organization_id": org["id"]})
    assert status == 201, rule
    try:
        now = datetime.now(timezone.utc)
        client = retrying_client(server, key)
        created = client.runs.create(
            outcome="PASS", procedure_id=org["procedures"][0]["id"], started_at=now,
            ended_at=now, serial_number="PY-LOST", part_number="PY-P",
            client_run_ref=f"py-{uuid.uuid4().hex}_1")
        runs = client.runs.list()
        assert [r.id for r in runs.data] == [created.id], "one run, not two"
        entries = journal(server, org, method="POST", path="/api/v2/runs")
        assert [e["status"] for e in entries] == [200, 503]
        assert entries[1]["fault_id"] == rule["id"]
    finally:
        control(server, "DELETE", f"/faults/{rule['id']}")
