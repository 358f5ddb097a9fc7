"""A minimal Django site whose pages are gated by Rollout flags for the logged-in user."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent.parent

SECRET_KEY = "only-for-this-example"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rollout.integrations.django",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shop.views.ProxyUserMiddleware",
    "rollout.integrations.django.middleware.RolloutMiddleware",  # request.flags
]
# Users are whoever the X-User header names (a login proxy in front would set it), so the
# example needs no login form; any Django login works the same way.
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",  # {{ user }}
                "rollout.integrations.django.context_processors.flags",  # {{ flags }}
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", HERE / "shop.db"),
    }
}

ROLLOUT = {
    "STORE": os.environ.get("ROLLOUT_STORE", f"sqlite:///{HERE / 'flags.db'}"),
    "OPTIONS": {
        "id_user_by": "username",  # flags list users by name: activate-user new_checkout alice
        # Where the CLI and other processes send flag changes (rollout --peers 127.0.0.1:7946).
        "listen": os.environ.get("ROLLOUT_LISTEN", "127.0.0.1:7946"),
    },
}

# One PostgreSQL database for everything: with SHOP_DATABASE_URL=postgresql://user@host/dbname the
# site's tables and its flags (in the schema "rollout") live in the database the team already
# runs. Flag changes then reach every process through PostgreSQL's LISTEN/NOTIFY, so no peer
# listener is needed (`rollout --store <that URL>?schema=rollout activate-user beta alice`).
DATABASE_URL = os.environ.get("SHOP_DATABASE_URL", "")
if DATABASE_URL.startswith(("postgresql://", "postgres://")):
    _db = urlsplit(DATABASE_URL)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.path.lstrip("/"),
            "USER": unquote(_db.username or ""),
            "PASSWORD": unquote(_db.password or ""),
            "HOST": _db.hostname or "",
            "PORT": str(_db.port or ""),
        }
    }
    ROLLOUT = {
        "STORE": DATABASE_URL + ("&" if "?" in DATABASE_URL else "?") + "schema=rollout",
        "OPTIONS": {"id_user_by": "username"},
    }
