#!/usr/bin/env python3
"""Drives qbo-sim with Intuit's official Python client (pip package `intuit-oauth`).

If Intuit's own SDK accepts the emulator's discovery document, redirects and
token answers, the emulator speaks the protocol the way real clients expect.

Usage:
    intuit_oauth_flow.py DISCOVERY_URL CLIENT_ID CLIENT_SECRET REDIRECT_URI
or the environment variables QBO_SIM_DISCOVERY_URL, QBO_SIM_CLIENT_ID,
QBO_SIM_CLIENT_SECRET, QBO_SIM_REDIRECT_URI. A base URL (without a path) is
accepted too and completed with the sandbox discovery path.

Exits 0 when every step behaved, 1 on the first failure, 2 on bad usage.
"""

import os
import secrets
import sys
from urllib.parse import parse_qs, urlparse

SANDBOX_DISCOVERY_PATH = "/.well-known/openid_sandbox_configuration"


def step(message):
    print(f"[intuit-oauth-flow] {message}", flush=True)


def fail(message):
    print(f"[intuit-oauth-flow] FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def arguments():
    names = [
        "QBO_SIM_DISCOVERY_URL",
        "QBO_SIM_CLIENT_ID",
        "QBO_SIM_CLIENT_SECRET",
        "QBO_SIM_REDIRECT_URI",
    ]
    if len(sys.argv) == 5:
        values = sys.argv[1:]
    elif len(sys.argv) == 1 and all(os.environ.get(n) for n in names):
        values = [os.environ[n] for n in names]
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    discovery, client_id, secret, redirect_uri = values
    if urlparse(discovery).path in ("", "/"):
        discovery = discovery.rstrip("/") + SANDBOX_DISCOVERY_PATH
    return discovery, client_id, secret, redirect_uri


def main():
    discovery, client_id, secret, redirect_uri = arguments()
    try:
        import requests
        from intuitlib.client import AuthClient
        from intuitlib.enums import Scopes
        from intuitlib.exceptions import AuthClientError
    except ImportError as e:
        fail(f"intuit-oauth is not installed in this python ({sys.executable}): {e}")

    # Any environment value other than sandbox/production is used by
    # intuitlib as the discovery document URL itself.
    step(f"discovery document {discovery}")
    try:
        client = AuthClient(client_id, secret, redirect_uri, environment=discovery)
    except Exception as e:  # noqa: BLE001 - report whatever the SDK raised
        fail(f"AuthClient rejected the discovery document: {e!r}")
    for name in ("auth_endpoint", "token_endpoint", "revoke_endpoint"):
        value = getattr(client, name)
        step(f"  {name} = {value}")
        if not value.startswith(discovery.split("/.well-known")[0]):
            fail(f"{name} does not point at the emulator: {value}")

    state = secrets.token_urlsafe(24)
    url = client.get_authorization_url([Scopes.ACCOUNTING], state_token=state)
    step("authorize with scripted approval (x-sim-decision: approve)")
    resp = requests.get(
        url, headers={"x-sim-decision": "approve"}, allow_redirects=False, timeout=10
    )
    if resp.status_code != 302:
        fail(f"authorize answered {resp.status_code}, expected 302: {resp.text[:200]}")
    if "intuit_tid" not in resp.headers:
        fail("authorize answer has no intuit_tid header")
    location = resp.headers.get("Location", "")
    if not location.startswith(redirect_uri + "?"):
        fail(f"redirected to {location!r}, not to {redirect_uri}")
    query = parse_qs(urlparse(location).query)
    code = query.get("code", [None])[0]
    realm_id = query.get("realmId", [None])[0]
    if query.get("state", [None])[0] != state:
        fail("state did not come back unchanged")
    if not code or not realm_id or not realm_id.isdigit():
        fail(f"callback lacks code or a numeric realmId: {sorted(query)}")
    step(f"  got a code and realmId {realm_id}")

    step("exchange the code (get_bearer_token)")
    try:
        client.get_bearer_token(code, realm_id=realm_id)
    except AuthClientError as e:
        fail(f"code exchange failed: {e.status_code} {e.content!r} intuit_tid={e.intuit_tid}")
    if not client.access_token or not client.refresh_token:
        fail("code exchange left access_token or refresh_token empty")
    if client.expires_in != 3600 or not client.x_refresh_token_expires_in:
        fail(f"unexpected lifetimes {client.expires_in} / {client.x_refresh_token_expires_in}")
    if client.realm_id != realm_id:
        fail("realm_id was not kept")
    first_refresh = client.refresh_token
    step(f"  access token of {len(client.access_token)} chars, "
         f"refresh token valid {client.x_refresh_token_expires_in} s")

    step("refresh")
    try:
        client.refresh()
    except AuthClientError as e:
        fail(f"refresh failed: {e.status_code} {e.content!r} intuit_tid={e.intuit_tid}")
    if not client.refresh_token or not client.access_token:
        fail("refresh left a token empty")
    step("  refreshed" + (" (same refresh token)" if client.refresh_token == first_refresh
                          else " (rotated refresh token)"))

    step("revoke the refresh token")
    try:
        ok = client.revoke(token=client.refresh_token)
    except AuthClientError as e:
        fail(f"revoke failed: {e.status_code} {e.content!r} intuit_tid={e.intuit_tid}")
    if ok is not True:
        fail(f"revoke returned {ok!r}")

    step("a refresh after the revoke must fail with invalid_grant")
    try:
        client.refresh()
    except AuthClientError as e:
        if e.status_code != 400 or "invalid_grant" not in (e.content or b"").decode():
            fail(f"refresh after revoke failed the wrong way: {e.status_code} {e.content!r}")
        if not e.intuit_tid:
            fail("the invalid_grant answer has no intuit_tid")
        step(f"  refused as expected (intuit_tid {e.intuit_tid})")
    else:
        fail("refresh after revoke succeeded")

    step("all steps passed")


if __name__ == "__main__":
    main()
