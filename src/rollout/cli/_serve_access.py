"""``rollout serve``'s options for evaluation-only tokens and OFREP's CORS.

``--eval-token [NAME=]SECRET`` (or ``$ROLLOUT_EVAL_TOKEN``, comma-separated) adds a token of
scope ``evaluate``: OFREP and the check endpoint only, nothing listed or changed, so it may ship
to browsers. ``--eval-flag NAME=FLAG`` (repeatable) limits such a token to named flags.
``--cors-origin ORIGIN`` (or ``$ROLLOUT_CORS_ORIGINS``) lets pages of that origin call OFREP.
Kept apart from ``--token`` so that every existing token, whatever characters its secret
holds, keeps meaning exactly what it meant: an admin token.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

__all__ = ["CORS_ENV", "EVAL_TOKEN_ENV", "add_access_options", "prepare_access", "serve_access"]

EVAL_TOKEN_ENV = "ROLLOUT_EVAL_TOKEN"
CORS_ENV = "ROLLOUT_CORS_ORIGINS"
DEFAULT_EVAL_NAME = "evaluate"


def add_access_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--eval-token",
        metavar="[NAME=]SECRET",
        action="append",
        help=f"also accept this token for evaluation only: OFREP and the check endpoint, "
        f"nothing listed or changed (repeatable; default name {DEFAULT_EVAL_NAME!r}). "
        f"Default: ${EVAL_TOKEN_ENV}, comma-separated",
    )
    serve.add_argument(
        "--eval-flag",
        metavar="NAME=FLAG",
        action="append",
        help="limit the evaluation token NAME to this flag (repeatable: one flag each)",
    )
    serve.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        action="append",
        help=f"let web pages of this origin (https://app.example.com, or *) call OFREP "
        f"(repeatable). Default: ${CORS_ENV}, comma-separated",
    )


def prepare_access(args: argparse.Namespace, parse_tokens: Callable[..., dict[str, str]]) -> None:
    """Add the evaluation tokens to ``args.tokens`` and set ``args.scopes``,
    ``args.token_flags`` and ``args.cors_origins``, refusing bad values by option.
    ``parse_tokens`` reads ``[NAME=]SECRET`` items as ``--token`` does."""
    values = args.eval_token
    source = "--eval-token"
    if not values:
        source = f"${EVAL_TOKEN_ENV}"
        values = [t.strip() for t in os.environ.get(EVAL_TOKEN_ENV, "").split(",") if t.strip()]
    evaluating = parse_tokens(values, source, default_name=DEFAULT_EVAL_NAME)
    for name in evaluating:
        if name in args.tokens:
            raise ValueError(f"{source}: the name {name!r} is also an admin token's (--token)")
    args.tokens = {**args.tokens, **evaluating}
    args.scopes = dict.fromkeys(evaluating, "evaluate")
    limits: dict[str, list[str]] = {}
    for item in args.eval_flag or ():
        name, equals, flag = item.partition("=")
        if not equals or not flag:
            raise ValueError(f"--eval-flag: expected NAME=FLAG, got {item!r}")
        if name not in evaluating:
            raise ValueError(
                f"--eval-flag {item!r}: {name!r} is not an evaluation token "
                f"(they are {sorted(evaluating)}; see --eval-token)"
            )
        limits.setdefault(name, []).append(flag)
    args.token_flags = limits
    origins = args.cors_origin or [
        o.strip() for o in os.environ.get(CORS_ENV, "").split(",") if o.strip()
    ]
    option = "--cors-origin" if args.cors_origin else f"${CORS_ENV}"
    if origins:  # checked now, before the store is opened (the admin extra may be missing)
        try:
            from ..admin._cors import check_origins

            check_origins(origins)
        except ImportError:
            pass  # cmd_serve says which extra serve needs
        except ValueError as exc:
            raise ValueError(f"{option}: {exc}") from None
    args.cors_origins = origins


def serve_access(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``serve`` passes on to ``create_app``."""
    return {
        "scopes": args.scopes,
        "token_flags": args.token_flags,
        "cors_origins": args.cors_origins,
    }
