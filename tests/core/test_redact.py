"""rollout._core.redact: the one function every printed or logged URL goes through."""

from __future__ import annotations

import pytest

from rollout._core.redact import redact_url, scrub, secrets_of


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://app:hunter2@h/0?namespace=x", "redis://app:***@h/0?namespace=x"),
        ("rediss://app:p%40ss@h:6380", "rediss://app:***@h:6380"),
        ("redis+sentinel://:hunter2@a:26379,b:26379/mymaster", "redis+sentinel://:***@a:26379,b:26379/mymaster"),
        ("redis://:hunter2@h:notaport/0", "redis://:***@h:notaport/0"),  # unparseable: still
        ("redis://h/0?password=hunter2&db=1", "redis://h/0?password=***&db=1"),
        ("redis://h/0?db=1&sentinel_password=x&Auth_Token=y", "redis://h/0?db=1&sentinel_password=***&Auth_Token=***"),
        ("https://ghp_token@example.com/x", "https://***@example.com/x"),
        ("nats://s3cr3t-token@h:4222", "nats://***@h:4222"),  # NATS: a token
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("postgres://app:pw@h/db", "postgres://app:***@h/db"),
        ("REDIS://app@h/0", "REDIS://app@h/0"),  # a user name with no password
        ("http://a:b@c@host:8080/p?q=1#f", "http://a:***@host:8080/p?q=1#f"),
        ("sqlite:///rollout.db", "sqlite:///rollout.db"),
        ("memory://", "memory://"),
        ("redis://127.0.0.1:6379/0?namespace=app", "redis://127.0.0.1:6379/0?namespace=app"),
        ("not a url", "not a url"),
    ],
)  # fmt: skip
def test_redact_url_masks_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_the_secrets_of_a_url_in_any_text() -> None:
    url = "redis://app:p%40ss%21@h/0?password=s3cret"
    assert secrets_of(url) == ["p%40ss%21", "s3cret", "p@ss!"]
    message = f"cannot connect to {url}: AUTH p@ss! refused (s3cret)"
    assert scrub(message, url) == (
        "cannot connect to redis://app:***@h/0?password=***: AUTH *** refused (***)"
    )
    assert scrub("nothing to hide", None, "sqlite:///x.db") == "nothing to hide"


def test_a_database_user_name_is_not_masked_in_text() -> None:
    # A bare user name in a PostgreSQL or Redis URL is no secret: masked in text, it turned
    # the scheme "postgresql" into "***ql" and hid which role the server refused.
    url = "postgresql://postgres@127.0.0.1:5999/test"
    assert secrets_of(url) == []
    message = f'cannot open {url}: role "postgres" does not exist'
    assert scrub(message, url) == message
    assert scrub("connect to nats://s3cr3t@h failed: s3cr3t", "nats://s3cr3t@h") == (
        "connect to nats://***@h failed: ***"
    )
