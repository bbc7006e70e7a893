#!/usr/bin/env python3
"""The pattern most teams use to keep QuickBooks Online connections alive: a loop over
Intuit's official Python client (`intuit-oauth`, package `intuitlib`) that refreshes each
connection and saves the new tokens to SQLite, one connection after the other, with a
durable commit each time (WAL, synchronous=FULL, the same durability as qbo-console).

Usage:
  official_client_loop.py DISCOVERY_URL CLIENT_ID CLIENT_SECRET REDIRECT_URI TOKENS_JSON SQLITE_PATH [--reuse-client]

DISCOVERY_URL is passed as AuthClient's `environment` (intuitlib accepts a discovery
document URL there). TOKENS_JSON is a JSON array of {"realm_id": ..., "refresh_token": ...}.

By default every connection gets its own AuthClient, as code that loads a tenant and
refreshes it does (each construction fetches the discovery document and opens a new HTTP
session). --reuse-client builds one AuthClient up front and reuses its session for every
refresh: the most favourable way to drive the official client.

Progress goes to stderr; the last line on stdout is machine-readable:
  RESULT refreshes=N failures=F seconds=S mode=per-connection|reuse-client
"""

import json
import sqlite3
import sys
import time


def main():
    args = [a for a in sys.argv[1:] if a != "--reuse-client"]
    reuse = len(args) != len(sys.argv) - 1
    if len(args) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    discovery, client_id, client_secret, redirect_uri, tokens_path, db_path = args

    from intuitlib.client import AuthClient
    from intuitlib.exceptions import AuthClientError

    with open(tokens_path) as f:
        entries = json.load(f)

    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS qbo_tokens ("
        " realm_id TEXT PRIMARY KEY,"
        " access_token TEXT NOT NULL,"
        " refresh_token TEXT NOT NULL,"
        " access_expires_at REAL NOT NULL,"
        " refresh_expires_at REAL NOT NULL,"
        " refreshed_at REAL NOT NULL)"
    )
    db.commit()

    shared = AuthClient(client_id, client_secret, redirect_uri, discovery) if reuse else None
    failures = 0
    done = 0
    total = len(entries)
    start = time.perf_counter()
    for e in entries:
        client = shared or AuthClient(
            client_id, client_secret, redirect_uri, discovery, realm_id=e["realm_id"]
        )
        try:
            client.refresh(refresh_token=e["refresh_token"])
        except AuthClientError as err:
            failures += 1
            print(
                f"refresh failed for realm {e['realm_id']}: HTTP {err.status_code} "
                f"intuit_tid={err.intuit_tid}",
                file=sys.stderr,
            )
            continue
        now = time.time()
        db.execute(
            "INSERT OR REPLACE INTO qbo_tokens VALUES (?, ?, ?, ?, ?, ?)",
            (
                e["realm_id"],
                client.access_token,
                client.refresh_token,
                now + (client.expires_in or 0),
                now + (client.x_refresh_token_expires_in or 0),
                now,
            ),
        )
        db.commit()
        if shared is None:
            client.close()
        done += 1
        if done % 2000 == 0:
            elapsed = time.perf_counter() - start
            print(f"  {done}/{total} refreshed, {done / elapsed:.0f}/s", file=sys.stderr)
    seconds = time.perf_counter() - start
    db.close()
    mode = "reuse-client" if reuse else "per-connection"
    print(f"RESULT refreshes={done} failures={failures} seconds={seconds:.3f} mode={mode}")


if __name__ == "__main__":
    main()
