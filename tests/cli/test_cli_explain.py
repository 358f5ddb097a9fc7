"""``rollout check NAME --user ID --why``: the installed command says which rule decided."""

from __future__ import annotations

import json
from pathlib import Path

from rollout import Rollout
from rollout._core.bucketing import threshold

from .test_cli import SCRIPT, run, url


def test_check_why_prints_the_rule_in_one_line_and_in_json(tmp_path: Path) -> None:
    store = url(tmp_path / "flags.db")
    with Rollout(store) as flags:
        flags.activate_percentage("chat", 10)
        flags.activate_user("chat", 7)
        flags.exclude_user("chat", 8)

    def why(*args: str) -> tuple[int, str]:
        done = run(str(SCRIPT), "--store", store, "check", "chat", *args, tmp_path=tmp_path)
        assert done.stderr == b"", done.stderr
        return done.returncode, done.stdout.decode()

    bound = threshold(10)
    assert why("--user", "1", "--why") == (
        1,
        f"off: bucket 2212294583 is not below {bound} (10% of users)\n",
    )
    assert why("--user", "7", "--why") == (0, "on: user '7' is listed\n")
    assert why("--user", "8", "--why") == (1, "off: user '8' is excluded\n")
    assert why("--why") == (1, "off: without a user a flag is on only at 100%\n")
    status, out = why("--user", "1", "--why", "--json")
    assert status == 1
    assert json.loads(out) == {
        "flag": "chat",
        "user": "1",
        "active": False,
        "reason": "bucket",
        "message": f"off: bucket 2212294583 is not below {bound} (10% of users)",
        "percentage": 10.0,
        "percentage_of_time": 0.0,
        "group": None,
        "bucket": 2212294583,
        "threshold": bound,
        "bucketing": "crc32",
        "draw": None,
    }
    # Without --why, check answers as it always did.
    assert why("--user", "7") == (0, "on\n")
    # A typo in the name is named, in the words of `rollout show`, the API's 404 and OpenFeature's
    # FLAG_NOT_FOUND ("no flag named 'chta'"), and still answers off (a deploy gate reads exit 1).
    typo = run(str(SCRIPT), "--store", store, "check", "chta", "--user", "7", "--why",
               tmp_path=tmp_path)  # fmt: skip
    assert (typo.returncode, typo.stdout.decode()) == (1, "off: no flag named 'chta'\n")
