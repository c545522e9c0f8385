"""Version order per ecosystem: dpkg keys order exactly as python-debian's Version does; RPM epochs and
apk ``-r`` revisions order by univers; malformed versions are one clear error."""

from __future__ import annotations

import itertools

import pytest

from kiln.errors import InvalidInput
from kiln.services.scanning.versions import APK, DPKG, RPM, dpkg_key, order_of, version_key

TRICKY = ["1.0", "1.0~rc1", "1.0~", "1.0~~", "1.0~a", "1.0-1", "1.0-1+deb12u1", "1.0-1~bpo12+1", "1:0.9",
          "0:1.0", "1.00", "1.0.", "1.0a", "1.0+b1", "1.9", "1.10", "1.2.3-1", "1.2.3-1+deb12u1",
          "2.36-9+deb12u3", "2.36-9", "1.0-0", "1.0-1ubuntu0.22.04.1", "1.0-1ubuntu1", "0", "1.0-1.1",
          "1.0-1.1~deb12u1", "9.6p1-3ubuntu13.3", "1:9.6p1-3ubuntu13.3", "3.0.19-1~deb12u2", "3.0.11-1~deb12u2",
          "1.0+dfsg-1", "1.0-A", "1.0-a", "1.0-+", "1.0-."]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def test_dpkg_keys_order_as_python_debian_does() -> None:
    from debian.debian_support import Version

    disagreements = []
    for a, b in itertools.product(TRICKY, TRICKY):
        expected = _sign((Version(a) > Version(b)) - (Version(a) < Version(b)))
        got = _sign((dpkg_key(a) > dpkg_key(b)) - (dpkg_key(a) < dpkg_key(b)))
        if expected != got:
            disagreements.append((a, b, expected, got))
    assert disagreements == []


def test_upstream_order_is_not_string_order() -> None:
    assert dpkg_key("1.10-1") > dpkg_key("1.9-1")  # as strings "1.10" < "1.9"
    assert dpkg_key("1.2.3-1+deb12u1") > dpkg_key("1.2.3-1")
    assert dpkg_key("1.0~rc1-1") < dpkg_key("1.0-1")


def test_rpm_epoch_outranks_the_version() -> None:
    assert version_key(RPM, "1:1.0-2.el9") > version_key(RPM, "2.0-1.el9")
    assert version_key(RPM, "1.0-10.el9") > version_key(RPM, "1.0-9.el9")


def test_apk_revision_orders_numerically() -> None:
    assert version_key(APK, "1.2.3-r10") > version_key(APK, "1.2.3-r9")
    assert version_key(APK, "1.2.3_rc1-r0") < version_key(APK, "1.2.3-r0")


@pytest.mark.parametrize(("order", "bad"), [(DPKG, "1.0_1"), (DPKG, ""), (APK, "abc"), (RPM, "")])
def test_a_malformed_version_is_one_error_naming_the_place(order: str, bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        version_key(order, bad, where="affected[0].versions[3]")
    assert raised.value.location == "affected[0].versions[3]"
    assert repr(bad) in raised.value.message and order in raised.value.message


def test_ecosystems_map_to_their_order() -> None:
    assert [order_of(e) for e in ("Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.19", "Rocky Linux:9", "npm")] == [
        DPKG, DPKG, APK, RPM, None]


def test_rpm_and_apk_keys_answer_every_comparison_consistently() -> None:
    for order, low, high in ((APK, "1.36.1-r9", "1.36.1-r10"), (RPM, "1.0-9.el9", "1.0-10.el9")):
        a, b = version_key(order, low), version_key(order, high)
        assert (a < b, a <= b, a > b, a >= b, a == b, b > a) == (True, True, False, False, False, True)
        assert version_key(order, low) == a


def test_dpkg_split_by_hand_is_the_grammars() -> None:
    import random

    from kiln.services.scanning.versions import _dpkg_grammar_parts, dpkg_parts

    rng = random.Random(7)
    alphabet = "0123456789:-.+~ab" + "Z_ \n²"
    samples = ["1:2.3-4", "2.36-9+deb12u4", "1:", ":1", "1:-1", "-1", "1-", "a--b", "1:2:3-4:5", "0:0-0",
               "1.0-a:b", "12:3.4~rc1-1ubuntu0.22.04.1", "", "1.0\n"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(20000)]
    for version in samples:
        try:
            expected: object = _dpkg_grammar_parts(version)
        except ValueError:
            expected = ValueError
        try:
            got: object = dpkg_parts(version)
        except ValueError:
            got = ValueError
        assert got == expected, version
