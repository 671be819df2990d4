"""Rows on their way: lazy chunks, the compact exact de-duplication, the keyed spool and the one-ahead reader."""

import itertools
import threading

import pytest

from tq_conn_common.rows import Dedupe, KeyedSpool, ahead, chunks


def test_chunks_are_lazy_and_bounded():
    pulled = []

    def source():
        for i in itertools.count():
            pulled.append(i)
            yield i
    first = next(chunks(source(), 3))
    assert first == [0, 1, 2] and pulled == [0, 1, 2]
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks(range(3), 0))


def test_dedupe_is_exact_and_small():
    seen = Dedupe()
    values = [f"host-{n}.example" for n in range(200_000)]
    assert all(seen.add(v) for v in values)
    assert not any(seen.add(v) for v in values[::7])
    assert seen.dropped == len(values[::7])
    assert seen.add("one more")
    assert sum(len(a) for a in seen._arrays) == 16 * 200_001          # sixteen bytes a key


def test_dedupe_ignores_a_match_across_two_stored_digests():
    import hashlib
    seen = Dedupe()
    digest = hashlib.blake2b(b"x", digest_size=16).digest()
    bucket = seen._arrays[int.from_bytes(digest[:2], "little") & (seen._BUCKETS - 1)]
    bucket += b"\x01" * 8 + digest + b"\x02" * 8     # the digest straddles two stored ones
    assert seen.add("x") is True and seen.add("x") is False


@pytest.mark.parametrize("keep,expected", [("last", [["b", 3], ["a", 4]]), ("first", [["a", 1], ["b", 3]])])
def test_the_keyed_spool_keeps_one_row_per_key(keep, expected):
    with KeyedSpool(keep) as spool:
        for key, value in (("a", 1), ("a", 2), ("b", 3), ("a", 4)):
            spool.add(key, [key, value])
        assert list(spool.rows()) == expected
        assert (spool.kept, spool.duplicates) == (2, 2)


def test_the_keyed_spool_notes_the_kinds_of_every_column():
    with KeyedSpool() as spool:
        spool.note({"n": 1, "s": "x", "b": True})
        spool.note({"n": None, "s": 2})
        assert spool.kinds == {"n": {"int", None}, "s": {"str", "int"}, "b": {"bool"}}


def test_ahead_takes_the_next_item_in_a_thread_and_raises_in_place():
    threads = []

    def produce():
        for i in range(3):
            threads.append(threading.current_thread().name)
            yield i
        raise RuntimeError("broken at 3")
    got = []
    with pytest.raises(RuntimeError, match="broken at 3"):
        for item in ahead(produce()):
            got.append(item)
    assert got == [0, 1, 2] and set(threads) == {"one-ahead"}
