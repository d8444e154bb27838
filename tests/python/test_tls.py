"""HTTPS with a private CA (runs when the session's server serves TLS:
`TOFULAB_TEST_TLS=1`, see conftest.py): the official v2 client trusts the lab's CA
through its own `client=` option, HTTP/2 is offered by ALPN, and a client that does not
trust the CA is refused."""

import os
import socket
import ssl

import certifi
import httpx
import pytest
from tofupilot.v2 import TofuPilot

pytestmark = pytest.mark.skipif(
    os.environ.get("TOFULAB_TEST_TLS") != "1", reason="the session's server is plain HTTP"
)


def test_the_v2_client_trusts_the_lab_ca_it_is_given(server):
    assert server.url.startswith("https://")
    ca = os.environ["SSL_CERT_FILE"]
    # What a station's script does: a context that trusts the lab's CA, handed to the
    # client (README, "HTTPS with your own CA").
    context = ssl.create_default_context(cafile=ca)
    with httpx.Client(verify=context) as http:
        client = TofuPilot(api_key=server.user_key, server_url=f"{server.url}/api", client=http)
        me = client.identity.whoami()
        assert me.user.email == server.user_email


def test_http2_is_offered_by_alpn(server):
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = server.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.selected_alpn_protocol() == "h2"


def test_a_client_that_does_not_trust_the_ca_is_refused(server):
    # The public roots only (certifi), as a client left unconfigured on a machine
    # without the lab's CA.
    context = ssl.create_default_context(cafile=certifi.where())
    with httpx.Client(verify=context) as http:
        client = TofuPilot(api_key=server.user_key, server_url=f"{server.url}/api", client=http)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.runs.list(limit=1)
