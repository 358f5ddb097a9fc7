"""Whose address a guess is counted against, against a real ``rollout serve``: the TCP peer's,
and ``X-Forwarded-For`` only from the proxies ``FORWARDED_ALLOW_IPS`` names.

uvicorn trusts the header from 127.0.0.1 unless told otherwise; what connects from loopback is
not always a proxy that sets it (stunnel, an SSH tunnel, ``kubectl port-forward`` pass the
client's header through), and then every guess could claim a fresh address, with a fresh
allowance, or the operator's address, to lock it out.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from .serve_process import Served, clean_env, serve

TOKEN = secrets.token_urlsafe(32)


def client_from(served: Served, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=served.url.rstrip("/"),
        timeout=30.0,
        transport=httpx.HTTPTransport(local_address=address),
    )


def guesses(client: httpx.Client, count: int, forwarded: str | None = None) -> list[int]:
    """The statuses of ``count`` wrong bearer tokens, each claiming another X-Forwarded-For
    (``forwarded`` with the guess's number, e.g. ``10.0.0.{n}``), or none."""
    statuses = []
    for n in range(count):
        headers = {"Authorization": f"Bearer wrong-{n}"}
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded.format(n=n)
        statuses.append(client.get("/api/v1/flags", headers=headers).status_code)
    return statuses


def test_a_client_cannot_pick_its_address_with_x_forwarded_for(tmp_path: Path) -> None:
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    env.pop("FORWARDED_ALLOW_IPS", None)
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env) as served:
        with client_from(served, "127.0.0.1") as attacker:
            statuses = guesses(attacker, 30, forwarded="10.0.{n}.1")
        # Still one client: 10 answers, then 429s.
        assert statuses.count(401) == 10, statuses
        assert statuses.count(429) == 20, statuses
        # Nor can it lock out another address by naming it.
        with client_from(served, "127.0.0.1") as attacker:
            guesses(attacker, 20, forwarded="127.0.0.3")
        with client_from(served, "127.0.0.3") as operator:
            right = operator.get("/api/v1/flags", headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200
    # The access log names the real peer, not the address the client claimed; and the log
    # says once how to list a reverse proxy whose header is ignored.
    log = served.stderr()
    assert "10.0.5.1" not in log
    assert log.count("carry X-Forwarded-For, which is ignored") == 1, log
    assert "FORWARDED_ALLOW_IPS=127.0.0.1" in log


def test_forwarded_allow_ips_names_the_proxies_whose_header_is_believed(tmp_path: Path) -> None:
    env = clean_env(ROLLOUT_TOKEN=TOKEN, FORWARDED_ALLOW_IPS="127.0.0.1")
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env) as served:
        assert "X-Forwarded-For on connections from 127.0.0.1" in served.stderr()
        # The proxy's clients each have their own allowance.
        with client_from(served, "127.0.0.1") as proxy:
            assert guesses(proxy, 12, forwarded="10.0.0.1").count(401) == 10
            assert guesses(proxy, 12, forwarded="10.0.0.2").count(401) == 10
        # A connection from elsewhere is its own client, whatever it claims.
        with client_from(served, "127.0.0.2") as other:
            assert guesses(other, 12, forwarded="10.0.{n}.9").count(401) == 10
    # A listed proxy is believed: nothing to warn about.
    assert "which is ignored" not in served.stderr()
