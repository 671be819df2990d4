"""The fake IOC generator, and the values stand-ins make with it: pinned, as tests and benchmarks compare them."""

import hashlib

import pytest

from tq_conn_sandbox import fake
from tq_conn_sandbox.services import ctci, flashpoint, recorded_future, threatq


def _digest(values):
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:16]


def test_the_pieces_go_together_as_each_kind_of_value_is_written():
    assert fake.ipv4(185, 0x12345678) == "185.52.86.120" and fake.cidr24(185, 0x345678) == "185.52.86.0/24"
    assert fake.ipv6((0x2001, 0xdb8, 1, 0, 0x2a), 0xfe) == "2001:db8:1:0:2a::fe"
    assert fake.domain("login", "portal", "1f", "com") == "login-portal1f.com"
    assert fake.url(True, "a.example", "x", 3, "gate.php") == "https://a.example/x/3/gate.php"
    assert fake.url(False, "a.example", "y") == "http://a.example/y"
    assert fake.email("billing7", "invoices-7.example.com") == "billing7@invoices-7.example.com"
    assert fake.cve(12, 2014, 11, 1000) == "CVE-2015-1012"
    assert fake.hash_hex("SHA-1", b"x") == hashlib.sha1(b"x").hexdigest()


def test_spread_is_one_to_one_on_the_low_bits():
    assert len({fake.spread(i, 7) & 0xFFFF for i in range(1 << 16)}) == 1 << 16


@pytest.mark.parametrize("kind, pinned", [("ip", "85725197566944af"), ("domain", "5da62fcbc1a04bde"),
                                          ("hash", "67bb1afeda466154"), ("url", "baf5ccb8a7fd15ef"),
                                          ("vulnerability", "e8c792a69ec2cdb1")])
def test_recorded_future_names_stay_the_same(kind, pinned):
    service = recorded_future.RecordedFuture()
    service.configure(kind, rows=500, ipv6_every=7, cidr_every=29)
    risk_list = service.risk_list(kind)
    assert _digest(risk_list.name(i, recorded_future._mix(i, risk_list.seed))[0] for i in range(500)) == pinned


def test_threatq_flashpoint_and_ctci_values_stay_the_same():
    collection = threatq.Collection(1, "Devo Export", 2000, 1, duplicate_every=50)
    assert _digest(collection.value(i)[0] for i in range(2000)) == "6391823eba59e8b4"
    assert _digest(flashpoint.indicator_value(t, i) for i in range(300)
                   for t in flashpoint.DEFAULT_TYPES) == "da18fb74fb1f5422"
    assert _digest(ctci.synthetic_row(n)["cve"] + ctci.synthetic_row(n)["reference"]
                   for n in range(500)) == "57c4c663b69a3456"
