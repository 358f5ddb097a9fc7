"""Golden values for every percentage-bucket formula (``rollout._core.bucketing``).

A percentage lets a user in when the user's bucket, a number below 2**32 that depends only on the
id (and, randomized, the flag name), is below ``threshold(percentage)``. Once shipped, a formula
never changes: a changed constant would move every user to another bucket, and a 20% rollout
would switch a different fifth of the users on and off across an upgrade. The statistical checks
elsewhere (about 20% let in, two flags independent) would all still pass, so the formulas are
pinned here by exact values.

Every number and every decision below was computed once from the code as it shipped and written
down as a literal; nothing here recomputes an expected value. When a test here fails, the formula
changed: fix the code, do not update the table. (A new formula gets a new table.)

Each table row names a flag (not in the default table: the name plays no part there), an id, the
id's bucket, and the decision ``Rollout.active`` gives at each of ``PERCENTAGES``: one character
per percentage, ``+`` let in and ``-`` not. Besides plain ids (ints, str ids, non-ASCII ids in both
Unicode normal forms, and almost empty ones such as ``" "``, ``"0"`` and ``"\\x00"``), each table
has ids whose bucket lands exactly on a boundary: ``"crc-50-in-FJOAMIA@J"`` has the last bucket a
50% rollout lets in and ``"crc-50-out-..."`` the first it leaves out (their last characters were
solved for; CRC32 is affine), so every column separates ids one bucket apart.

The default and ``"ruby"`` formulas are also pinned against the real Ruby gem in
``tests/core/test_ruby_golden.py`` (``shared/golden/ruby-rollout-2.6.2.json``). This table stands
on its own: it holds without that file, and it covers the randomized formula the gem lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from zlib import crc32

import pytest

from rollout import Rollout
from rollout._core.bucketing import (
    Randomize,
    bucket_seed,
    id_bytes,
    randomized_bucket,
    ruby_bucket,
    threshold,
)
from rollout.testing import FakeClock

from ..golden import load_golden

#: The percentages each row's decisions are given at, in order.
PERCENTAGES: Final = (0.0, 0.01, 50.0, 99.99, 100.0)

#: ``threshold(pct)``: a bucket below it is let in. At 100 every bucket is (the gem, unlike us,
#: leaves out a bucket of 2**32 - 1); the others are ``ceil((2**32 - 1) / 100 * pct)``.
THRESHOLDS: Final = {
    0.0: 0,
    0.01: 429_497,
    0.1: 4_294_968,
    1.0: 42_949_673,
    5.0: 214_748_365,
    20.0: 858_993_459,
    33.3: 1_430_224_110,
    50.0: 2_147_483_648,
    99.0: 4_252_017_623,
    99.99: 4_294_537_799,
    100.0: 4_294_967_296,
}

# The default formula: ``crc32(str(id).encode())``, the flag name plays no part (the Ruby gem's
# non-randomized buckets). Rows: (id, bucket, decisions).
DEFAULT: Final[list[tuple[int | str, int, str]]] = [
    (1, 2_212_294_583, "---++"),
    (7, 1_790_921_346, "--+++"),
    (42, 841_265_288, "--+++"),
    (0, 4_108_050_209, "---++"),
    (-1, 808_273_962, "--+++"),
    (2000, 2_794_589_433, "---++"),
    (2_147_483_648, 2_238_651_201, "---++"),
    (18_446_744_073_709_551_617, 1_374_695_478, "--+++"),
    ("alice", 663_665_735, "--+++"),
    ("user-9", 1_895_681_574, "--+++"),
    ("0", 4_108_050_209, "---++"),
    ("00", 3_091_600_544, "---++"),
    ("-0", 1_193_965_756, "--+++"),
    (" ", 3_916_222_277, "---++"),
    ("\x00", 3_523_407_757, "---++"),
    ("jos\u00e9", 1_871_656_556, "--+++"),
    ("jose\u0301", 3_383_312_462, "---++"),
    ("用户", 501_916_381, "--+++"),
    ("🚀", 930_863_046, "--+++"),
    ("ÅNGSTRÖM", 2_070_540_079, "--+++"),
    ("crc-zero-FNNLNOO@@", 0, "-++++"),
    ("crc-0.01-in-OHOEDMLJJ", 429_496, "-++++"),
    ("crc-0.01-out-KDFGGDDHH", 429_497, "--+++"),
    ("crc-50-in-FJOAMIA@J", 2_147_483_647, "--+++"),
    ("crc-50-out-GGD@N@NH@", 2_147_483_648, "---++"),
    ("crc-99.99-in-OJMF@DFHJ", 4_294_537_798, "---++"),
    ("crc-99.99-out-KOBHNH@BB", 4_294_537_799, "----+"),
    ("crc-top-JGBGNEBJB", 4_294_967_295, "----+"),
]

#: ``bucket_seed(flag)``: CRC32 of the flag name and a unit separator, the randomized formula's
#: starting value.
SEEDS: Final[list[tuple[str, int]]] = [
    ("chat", 1_768_699_260),
    ("beta", 2_336_113_566),
    ("signup", 1_878_113_935),
    ("a", 2_956_412_396),
    ("ab", 1_821_867_221),
    ("功能", 206_749_887),
    ("Ωmega", 4_000_400_885),
    ("a much longer flag name, with spaces", 1_942_883_643),
]

# ``randomize_percentage=True``: CRC32 of flag name + "\x1f" + id, then the murmur3 finalizer.
# Rows: (flag, id, bucket, decisions).
RANDOMIZED: Final[list[tuple[str, int | str, int, str]]] = [
    ("chat", 1, 3_905_553_543, "---++"),
    ("chat", 7, 3_718_286_196, "---++"),
    ("chat", 42, 2_503_104_654, "---++"),
    ("chat", 0, 1_098_471_746, "--+++"),
    ("chat", -1, 2_838_758_382, "---++"),
    ("chat", 2000, 1_027_392_112, "--+++"),
    ("chat", 2_147_483_648, 1_776_310_227, "--+++"),
    ("chat", 18_446_744_073_709_551_617, 3_882_379_980, "---++"),
    ("chat", "alice", 975_751_838, "--+++"),
    ("chat", "user-9", 3_834_567_963, "---++"),
    ("chat", "0", 1_098_471_746, "--+++"),
    ("chat", "00", 1_175_730_112, "--+++"),
    ("chat", "-0", 2_738_401_440, "---++"),
    ("chat", " ", 2_321_315_148, "---++"),
    ("chat", "\x00", 3_570_289_658, "---++"),
    ("chat", "jos\u00e9", 1_071_278_463, "--+++"),
    ("chat", "jose\u0301", 3_408_601_582, "---++"),
    ("chat", "用户", 2_187_720_367, "---++"),
    ("chat", "🚀", 429_280_643, "--+++"),
    ("chat", "ÅNGSTRÖM", 3_589_406_764, "---++"),
    ("beta", 1, 1_268_753_127, "--+++"),
    ("beta", 7, 998_028_921, "--+++"),
    ("beta", 42, 1_987_558_186, "--+++"),
    ("beta", 0, 1_641_273_596, "--+++"),
    ("beta", -1, 1_335_414_562, "--+++"),
    ("beta", 2000, 2_812_172_656, "---++"),
    ("beta", 2_147_483_648, 2_010_404_248, "--+++"),
    ("beta", 18_446_744_073_709_551_617, 4_147_746_394, "---++"),
    ("beta", "alice", 1_573_204_736, "--+++"),
    ("beta", "user-9", 2_977_673_343, "---++"),
    ("beta", "0", 1_641_273_596, "--+++"),
    ("beta", "00", 27_427_825, "--+++"),
    ("beta", "-0", 4_239_807_361, "---++"),
    ("beta", " ", 3_713_950_409, "---++"),
    ("beta", "\x00", 3_472_932_849, "---++"),
    ("beta", "jos\u00e9", 4_095_209_851, "---++"),
    ("beta", "jose\u0301", 3_826_074_978, "---++"),
    ("beta", "用户", 2_138_876_972, "--+++"),
    ("beta", "🚀", 3_587_491_052, "---++"),
    ("beta", "ÅNGSTRÖM", 2_338_108_332, "---++"),
    ("功能", 1, 4_276_017_169, "---++"),
    ("功能", 7, 1_924_045_195, "--+++"),
    ("功能", 42, 3_968_979_021, "---++"),
    ("功能", 0, 2_441_604_745, "---++"),
    ("功能", -1, 1_326_370_519, "--+++"),
    ("功能", 2000, 860_280_482, "--+++"),
    ("功能", 2_147_483_648, 4_259_090_522, "---++"),
    ("功能", 18_446_744_073_709_551_617, 1_911_472_741, "--+++"),
    ("功能", "alice", 2_104_373_794, "--+++"),
    ("功能", "user-9", 2_218_689_452, "---++"),
    ("功能", "0", 2_441_604_745, "---++"),
    ("功能", "00", 2_524_369_437, "---++"),
    ("功能", "-0", 387_384_825, "--+++"),
    ("功能", " ", 2_786_323_650, "---++"),
    ("功能", "\x00", 3_147_974_942, "---++"),
    ("功能", "jos\u00e9", 2_344_805_124, "---++"),
    ("功能", "jose\u0301", 3_868_908_765, "---++"),
    ("功能", "用户", 3_406_700_262, "---++"),
    ("功能", "🚀", 3_405_133_637, "---++"),
    ("功能", "ÅNGSTRÖM", 2_049_715_961, "--+++"),
    ("chat", "rnd-zero-BONEHBNHH", 0, "-++++"),
    ("chat", "rnd-0.01-in-ICENAFL@B", 429_496, "-++++"),
    ("chat", "rnd-0.01-out-IHBDAKEJB", 429_497, "--+++"),
    ("chat", "rnd-50-in-ACFIAOLB@", 2_147_483_647, "--+++"),
    ("chat", "rnd-50-out-NMHA@NLB@", 2_147_483_648, "---++"),
    ("chat", "rnd-99.99-in-OLFHOKAH@", 4_294_537_798, "---++"),
    ("chat", "rnd-99.99-out-DNACCDIBB", 4_294_537_799, "----+"),
    ("chat", "rnd-top-@OCH@JFBH", 4_294_967_295, "----+"),
]

# ``randomize_percentage="ruby"``: the gem's randomized buckets, ``crc32(id + flag)``.
# Rows: (flag, id, bucket, decisions).
RUBY: Final[list[tuple[str, int | str, int, str]]] = [
    ("chat", 1, 515_525_533, "--+++"),
    ("chat", 7, 2_449_129_021, "---++"),
    ("chat", 42, 2_970_690_120, "---++"),
    ("chat", 0, 601_514_541, "--+++"),
    ("chat", -1, 3_530_034_123, "---++"),
    ("chat", 2000, 3_945_512_102, "---++"),
    ("chat", 2_147_483_648, 703_693_220, "--+++"),
    ("chat", 18_446_744_073_709_551_617, 2_623_942_808, "---++"),
    ("chat", "alice", 2_937_099_764, "---++"),
    ("chat", "user-9", 2_330_089_422, "---++"),
    ("chat", "0", 601_514_541, "--+++"),
    ("chat", "00", 1_346_384_702, "--+++"),
    ("chat", "-0", 4_010_287_739, "---++"),
    ("chat", " ", 1_127_937_455, "--+++"),
    ("chat", "\x00", 2_197_543_595, "---++"),
    ("chat", "jos\u00e9", 1_436_408_702, "--+++"),
    ("chat", "jose\u0301", 4_088_475_088, "---++"),
    ("chat", "用户", 2_898_816_351, "---++"),
    ("chat", "🚀", 3_389_744_631, "---++"),
    ("chat", "ÅNGSTRÖM", 1_285_202_437, "--+++"),
    ("beta", 1, 4_105_616_724, "---++"),
    ("beta", 7, 2_079_738_100, "--+++"),
    ("beta", 42, 1_528_681_601, "--+++"),
    ("beta", 0, 3_386_283_236, "---++"),
    ("beta", -1, 946_142_466, "--+++"),
    ("beta", 2000, 19_352_175, "--+++"),
    ("beta", 2_147_483_648, 3_288_168_301, "---++"),
    ("beta", 18_446_744_073_709_551_617, 1_986_709_073, "--+++"),
    ("beta", "alice", 1_159_488_317, "--+++"),
    ("beta", "user-9", 1_626_251_527, "--+++"),
    ("beta", "0", 3_386_283_236, "---++"),
    ("beta", "00", 3_125_593_591, "---++"),
    ("beta", "-0", 84_202_674, "--+++"),
    ("beta", " ", 2_838_889_318, "---++"),
    ("beta", "\x00", 1_761_029_218, "--+++"),
    ("beta", "jos\u00e9", 3_213_962_679, "---++"),
    ("beta", "jose\u0301", 431_872_793, "--+++"),
    ("beta", "用户", 1_187_290_006, "--+++"),
    ("beta", "🚀", 537_367_358, "--+++"),
    ("beta", "ÅNGSTRÖM", 2_794_869_964, "---++"),
    ("功能", 1, 3_372_951_497, "---++"),
    ("功能", 7, 2_866_483_955, "---++"),
    ("功能", 42, 19_554_500, "--+++"),
    ("功能", 0, 1_870_408_829, "--+++"),
    ("功能", -1, 1_396_068_441, "--+++"),
    ("功能", 2000, 3_596_638_943, "---++"),
    ("功能", 2_147_483_648, 3_158_226_582, "---++"),
    ("功能", 18_446_744_073_709_551_617, 1_940_650_468, "--+++"),
    ("功能", "alice", 476_035_422, "--+++"),
    ("功能", "user-9", 1_285_349_705, "--+++"),
    ("功能", "0", 1_870_408_829, "--+++"),
    ("功能", "00", 318_734_103, "--+++"),
    ("功能", "-0", 4_114_701_293, "---++"),
    ("功能", " ", 144_879_795, "--+++"),
    ("功能", "\x00", 3_340_732_719, "---++"),
    ("功能", "jos\u00e9", 1_280_794_501, "--+++"),
    ("功能", "jose\u0301", 671_956_967, "--+++"),
    ("功能", "用户", 3_804_931_466, "---++"),
    ("功能", "🚀", 2_328_853_914, "---++"),
    ("功能", "ÅNGSTRÖM", 2_839_883_559, "---++"),
    ("chat", "rb-zero-IAJJDEFJJ", 0, "-++++"),
    ("chat", "rb-0.01-in-FDIGDIM@J", 429_496, "-++++"),
    ("chat", "rb-0.01-out-LIHGIGLHH", 429_497, "--+++"),
    ("chat", "rb-50-in-HOKCKJCJJ", 2_147_483_647, "--+++"),
    ("chat", "rb-50-out-OOF@HMFBH", 2_147_483_648, "---++"),
    ("chat", "rb-99.99-in-C@IHFHBB@", 4_294_537_798, "---++"),
    ("chat", "rb-99.99-out-CNHNMHD@J", 4_294_537_799, "----+"),
    ("chat", "rb-top-DOENBMHHJ", 4_294_967_295, "----+"),
]


@dataclass(frozen=True)
class User:
    """A user object: ``Rollout`` reads its ``id``."""

    id: int | str


def ruled(bucket: int) -> str:
    """The decisions a bucket gets by the rule "below the threshold", from the literal table."""
    return "".join("+" if bucket < THRESHOLDS[pct] else "-" for pct in PERCENTAGES)


def decisions(flags: Rollout, flag: str, user: int | str) -> list[str]:
    """What ``flags.active`` answers at each percentage, for the id given each way it can be."""
    answers = []
    for pct in PERCENTAGES:
        flags.activate_percentage(flag, pct)
        ways = {
            flags.active(flag, user),
            flags.active(flag, str(user)),
            flags.active(flag, User(user)),
        }
        answers.append("+" if ways == {True} else "-" if ways == {False} else "?")
    return answers


def mismatches(randomize: Randomize, rows: list[tuple[str, int | str, str]]) -> list[str]:
    """The rows ``Rollout(randomize_percentage=randomize)`` decides otherwise than the table."""
    wrong = []
    with Rollout(randomize_percentage=randomize, clock=FakeClock()) as flags:
        for flag, user, expected in rows:
            got = "".join(decisions(flags, flag, user))
            if got != expected:
                wrong.append(f"{flag!r} {user!r}: {got}, table says {expected}")
    return wrong


# Thresholds and the tables themselves ---------------------------------------------------------


@pytest.mark.parametrize(("pct", "bound"), THRESHOLDS.items())
def test_threshold(pct: float, bound: int) -> None:
    assert threshold(pct) == bound


def test_every_table_decides_by_its_buckets_and_covers_each_boundary() -> None:
    rows = [(b, d) for _, b, d in DEFAULT] + [(b, d) for _, _, b, d in RANDOMIZED + RUBY]
    assert [d for b, d in rows if ruled(b) != d] == []
    for table in (
        [(b, d) for _, b, d in DEFAULT],
        [(b, d) for _, _, b, d in RANDOMIZED],
        [(b, d) for _, _, b, d in RUBY],
    ):
        buckets = {b for b, _ in table}
        for bound in (429_497, 2_147_483_648, 4_294_537_799):
            assert {bound - 1, bound} <= buckets  # one bucket apart, on either side
        assert {0, 2**32 - 1} <= buckets
        # Every column lets some ids in and leaves some out, except 0% and 100%.
        assert {d[0] for _, d in table} == {"-"}
        assert {d[-1] for _, d in table} == {"+"}
        for column in range(1, len(PERCENTAGES) - 1):
            assert {d[column] for _, d in table} == {"+", "-"}


# The default formula --------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "bucket", "_decisions"), DEFAULT)
def test_default_bucket(user: int | str, bucket: int, _decisions: str) -> None:
    assert crc32(str(user).encode()) == bucket
    assert ruby_bucket(str(user)) == bucket
    assert ruby_bucket(str(user), "chat") == bucket  # the flag name is used only randomized


def test_default_decisions_through_rollout() -> None:
    rows = [(flag, user, d) for user, _, d in DEFAULT for flag in ("chat", "功能")]
    assert mismatches(False, rows) == []


# randomize_percentage=True --------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "seed"), SEEDS)
def test_randomized_seed(flag: str, seed: int) -> None:
    assert bucket_seed(flag) == seed


@pytest.mark.parametrize(("flag", "user", "bucket", "_decisions"), RANDOMIZED)
def test_randomized_bucket(flag: str, user: int | str, bucket: int, _decisions: str) -> None:
    assert randomized_bucket(str(user), bucket_seed(flag)) == bucket


def test_randomized_decisions_through_rollout() -> None:
    assert mismatches(True, [(flag, user, d) for flag, user, _, d in RANDOMIZED]) == []


def test_randomized_separator_keeps_name_and_id_apart() -> None:
    # Flag "ab" with id "c" and flag "a" with id "bc" hash different texts: "ab\x1fc", "a\x1fbc".
    assert randomized_bucket("c", bucket_seed("ab")) == 3_644_226_958
    assert randomized_bucket("bc", bucket_seed("a")) == 3_839_459_213


# randomize_percentage="ruby" ------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "user", "bucket", "_decisions"), RUBY)
def test_ruby_randomized_bucket(flag: str, user: int | str, bucket: int, _decisions: str) -> None:
    assert ruby_bucket(str(user), flag, randomize=True) == bucket
    assert crc32((str(user) + flag).encode()) == bucket


def test_ruby_randomized_decisions_through_rollout() -> None:
    assert mismatches("ruby", [(flag, user, d) for flag, user, _, d in RUBY]) == []


def test_ruby_randomized_has_no_separator() -> None:
    # The gem's text is id + name: id "ab" of flag "c" and id "a" of flag "bc" share a bucket.
    assert ruby_bucket("ab", "c", randomize=True) == 891_568_578
    assert ruby_bucket("a", "bc", randomize=True) == 891_568_578
    assert ruby_bucket("c", "ab", randomize=True) == 1_787_492_089


# Edges the formulas see but Rollout does not let through ----------------------------------------


def test_the_empty_id_and_flag_name() -> None:
    # Rollout refuses "" as a flag name or a user id it stores; the formulas still give a bucket.
    assert ruby_bucket("") == 0
    assert randomized_bucket("", bucket_seed("chat")) == 2_577_573_194
    assert ruby_bucket("", "chat", randomize=True) == 1_704_850_090
    assert bucket_seed("") == 1_594_548_856


# Agreement with the gem's recording, where it is at hand --------------------------------------


def test_the_table_agrees_with_the_gem_recording() -> None:
    golden = load_golden()
    at_50 = set(golden["bucketing"]["50"])
    checked = 0
    for user, _, d in DEFAULT:
        if isinstance(user, int) and 1 <= user <= 2000:
            assert (user in at_50) is (d[PERCENTAGES.index(50.0)] == "+"), user
            checked += 1
    for flag, user, bucket, _ in RUBY:
        if flag in golden["randomized"] and isinstance(user, int) and 1 <= user <= 2000:
            at_20 = golden["randomized"][flag]
            assert (user in at_20) is (bucket < THRESHOLDS[20.0]), (flag, user)
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("randomize", [False, True, "ruby"])
def test_a_check_answers_for_an_id_utf8_cannot_encode(randomize: Randomize) -> None:
    # Such ids reach a check from os.fsdecode() or a raw header (surrogateescape) or a JSON
    # "\ud800" escape. Writes refuse them; a check answers, with the bucket of the bytes the id
    # came from, the same answer explain() gives, and never raises out of a request.
    escaped = b"caf\xe9-42".decode("utf-8", "surrogateescape")  # Latin-1 bytes, not UTF-8
    with Rollout(randomize_percentage=randomize) as flags:
        for percentage in (0.5, 50, 99.5):
            flags.activate_percentage("chat", percentage)
            for uid in (escaped, "\ud800", "x\udfff"):
                answer = flags.active("chat", uid)
                why = flags.explain("chat", uid)
                assert answer is why.active, (uid, percentage, why)
        with pytest.raises(ValueError, match="lone surrogate"):
            flags.activate_user("chat", escaped)
    assert crc32(id_bytes(escaped)) == crc32(b"caf\xe9-42")  # the bytes it came from
