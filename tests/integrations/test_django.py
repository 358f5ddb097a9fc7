"""rollout.integrations.django: the example site under runserver, and the app in-process.

The in-process tests configure Django once for this module (an in-memory database, this module
as the URLconf) and use Django's own test client with real users and sessions.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django  # type: ignore[import-untyped]
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings  # type: ignore[import-untyped]

from rollout import Rollout, StoreError
from rollout.testing.cluster import free_port

from .example_servers import EXAMPLES, Server, check_the_example, example_env, python, seed, serve

# The example, as a real server ------------------------------------------------------------------

SITE = EXAMPLES / "django_site"


def text(response: Any) -> str:
    # response.text is Django 5's; the library supports Django 4.2 (make test-lowest).
    return str(response.content.decode())


@pytest.fixture
def django_example(tmp_path: Path) -> Iterator[Server]:
    env, store, peer = example_env(tmp_path)
    env["SHOP_DB"] = str(tmp_path / "shop.db")
    migrate = subprocess.run(
        python("manage.py", "migrate", "--verbosity", "0"),
        cwd=SITE, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    seed(store)
    port = free_port()
    command = python("manage.py", "runserver", f"127.0.0.1:{port}", "--noreload")
    log = tmp_path / "runserver.log"
    with serve(
        command, port=port, env=env, cwd=SITE, log_path=log, store=store, peer=peer
    ) as server:
        yield server


def test_the_django_example_follows_flag_changes_per_user(django_example: Server) -> None:
    check_the_example(django_example)


# In-process, with Django's test client ---------------------------------------------------------

# `flags.x` is the flag x: Django looks a dotted name up as a key first, so every name after
# `flags.` is a flag (even `flags.user`); `|active` spells names that are not identifiers.
TEMPLATE = (
    "{% load rollout %}{{ flags.x }} {{ flags|active:'x-y' }} {{ flags.user }} "
    "{% for name in flags %}{{ name }},{% endfor %}"
)

if not settings.configured:
    settings.configure(
        SECRET_KEY="test",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "rollout.integrations.django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "rollout.integrations.django.middleware.RolloutMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": ["rollout.integrations.django.context_processors.flags"]
                },
            }
        ],
        ROLLOUT={"STORE": "memory://"},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    django.setup()

# After setup: these need the apps loaded.
from django.contrib.auth.models import User  # type: ignore[import-untyped]  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]  # noqa: E402
from django.core.management import call_command  # type: ignore[import-untyped]  # noqa: E402
from django.http import HttpResponse  # type: ignore[import-untyped]  # noqa: E402
from django.template import engines  # type: ignore[import-untyped]  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # type: ignore[import-untyped]  # noqa: E402
from django.urls import path  # type: ignore[import-untyped]  # noqa: E402

from rollout.integrations.django import (  # noqa: E402
    aflags_for,
    close_flags,
    flags_for,
    get_flags,
    user_of,
)


def whoami(request: Any) -> HttpResponse:
    flag = request.GET.get("flag", "x")
    return HttpResponse(f"{request.flags.user} {'on' if request.flags.active(flag) else 'off'}")


async def awhoami(request: Any) -> HttpResponse:
    flags = await aflags_for(request)
    return HttpResponse(f"{flags.user} {'on' if flags.active('x') else 'off'}")


def page(request: Any) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(TEMPLATE).render(request=request))


def many(request: Any) -> HttpResponse:
    """Checks through the middleware, flags_for and a template, all in one request."""
    checks = [request.flags.active("x"), flags_for(request).active("x"), request.flags["x"]]
    return HttpResponse(f"{checks} {text(page(request))}")


def header_user(request: Any) -> str | None:
    """A custom USER: whoever the X-User header names."""
    name: str | None = request.headers.get("X-User")
    return name


USERS_RESOLVED: list[str] = []


def counted_user(request: Any) -> object:
    USERS_RESOLVED.append(request.path)
    return user_of(request)


urlpatterns = [
    path("", whoami),
    path("async", awhoami),
    path("page", page),
    path("many", many),
]


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    call_command("migrate", verbosity=0)
    User.objects.create_user("alice")
    User.objects.create_user("bob")
    User.objects.create_user("boss", is_staff=True)
    yield
    close_flags()


@pytest.fixture(autouse=True)
def fresh_flags() -> Iterator[Rollout]:
    """Each test starts from an empty process-wide Rollout (``ROLLOUT = {"STORE": "memory://"}``)."""
    close_flags()
    yield get_flags()
    close_flags()


def client_as(username: str | None) -> Client:
    client = Client()
    if username is not None:
        client.force_login(User.objects.get(username=username))
    return client


def test_views_check_flags_for_the_logged_in_user(fresh_flags: Rollout) -> None:
    alice = User.objects.get(username="alice")
    fresh_flags.activate_user("x", alice)  # a Django user's id is its primary key
    assert text(client_as("alice").get("/")) == "alice on"
    assert text(client_as("bob").get("/")) == "bob off"
    assert text(client_as(None).get("/")) == "None off"  # anonymous: no user
    fresh_flags.activate_percentage("x", 100)
    assert text(client_as(None).get("/")) == "None on"


def test_groups_see_the_django_user_object(fresh_flags: Rollout) -> None:
    fresh_flags.define_group("staff", lambda user: user.is_staff)
    fresh_flags.activate_group("x", "staff")
    assert text(client_as("boss").get("/")) == "boss on"
    assert text(client_as("alice").get("/")) == "alice off"


def test_templates_read_flags_by_attribute_filter_and_loop(fresh_flags: Rollout) -> None:
    fresh_flags.activate_user("x", User.objects.get(username="alice"))
    fresh_flags.activate("x-y")
    fresh_flags.activate_user("user", User.objects.get(username="bob"))
    assert text(client_as("alice").get("/page")) == "True True False x,x-y,"
    assert text(client_as("bob").get("/page")) == "False True True user,x-y,"
    assert text(client_as(None).get("/page")) == "False True False x-y,"


def test_the_user_is_resolved_once_per_request() -> None:
    USERS_RESOLVED.clear()
    with override_settings(ROLLOUT={"STORE": "memory://", "USER": counted_user}):
        get_flags().activate_user("x", User.objects.get(username="alice"))
        assert text(client_as("alice").get("/many")) == "[True, True, True] True False False x,"
        assert text(client_as(None).get("/many")) == "[False, False, False] False False False "
    assert USERS_RESOLVED == ["/many", "/many"]


async def fetch(client: AsyncClient, path: str) -> str:
    # A coroutine function of our own: AsyncClient.get is not marked async before Django 5.
    return text(await client.get(path))


def test_async_views_await_the_user(fresh_flags: Rollout) -> None:
    fresh_flags.activate_user("x", User.objects.get(username="alice"))
    client = AsyncClient()
    client.force_login(User.objects.get(username="alice"))
    assert async_to_sync(fetch)(client, "/async") == "alice on"
    assert async_to_sync(fetch)(AsyncClient(), "/async") == "None off"


def test_a_custom_user_resolver_by_dotted_path() -> None:
    with override_settings(
        ROLLOUT={
            "STORE": "memory://",
            "USER": f"{__name__}.header_user",
            "OPTIONS": {"defaults": {"x": False}},
        }
    ):
        get_flags().activate_user("x", "carol")
        assert text(client_as(None).get("/", headers={"X-User": "carol"})) == "carol on"
        assert text(client_as("alice").get("/")) == "None off"  # only the header counts


def test_changing_the_settings_replaces_the_rollout(tmp_path: Path, fresh_flags: Rollout) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as other:
        other.activate("x")
    with override_settings(ROLLOUT={"STORE": url}):
        assert fresh_flags.stats()["closed"] is True
        assert get_flags().active("x")
        assert text(client_as(None).get("/")) == "None on"
    assert not get_flags().active("x")  # back to the memory store


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        (None, "settings.ROLLOUT is not set"),
        ("sqlite:///flags.db", "must be a dict"),
        ({}, r"ROLLOUT\['STORE'\] is not set"),
        ({"STORE": "memory://", "STORAGE": "x"}, r"unknown keys \['STORAGE'\]"),
        ({"STORE": "memory://", "OPTIONS": {"lisen": "x"}}, "unexpected keyword argument 'lisen'"),
        ({"STORE": "memory://", "OPTIONS": ["listen"]}, "must be a mapping"),
        ({"STORE": 42}, "URL string or a Store, got 42"),
        ({"STORE": "memory://", "USER": 42}, "must be a callable or its dotted path"),
    ],
)
def test_bad_settings_are_improperly_configured(rollout: object, message: str) -> None:
    with override_settings(ROLLOUT=rollout), pytest.raises(ImproperlyConfigured, match=message):
        get_flags()


def test_the_app_checks_the_settings_at_start_up() -> None:
    from django.apps import apps  # type: ignore[import-untyped]

    config = apps.get_app_config("rollout")
    bad = {"STORE": "memory://", "OPTIONS": {"lisen": "x"}}
    with override_settings(ROLLOUT=bad), pytest.raises(ImproperlyConfigured, match="lisen"):
        config.ready()
    config.ready()  # the settings are good again


def test_a_store_that_cannot_be_opened_fails_on_first_use(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    broken = {"STORE": f"sqlite:///{tmp_path / 'a-directory.db'}"}
    with override_settings(ROLLOUT=broken), pytest.raises(StoreError, match="a-directory"):
        client_as(None).get("/")


def test_the_active_filter_without_the_context_processor_says_what_is_missing() -> None:
    template = engines["django"].from_string("{% load rollout %}{{ nothing|active:'x' }}")
    with pytest.raises(TypeError, match="context processor"):
        template.render({})
