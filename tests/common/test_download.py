"""Streamed downloads: a gzip file inflated on the fly like the gzip module reads it, and CSV records of blocks."""

import csv
import gzip
import io
import itertools
import os
import zlib
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tq_conn_common import download, parallel
from tq_conn_common.download import _INFLATE_LIMIT, Spooled, _gunzip, _reason, read_csv
from tq_conn_common.errors import BadRecord, SourceError

DATA = b"".join(b'"host-%d.example","%d","1/52","{""EvidenceDetails"": []}"\n' % (i, i % 100) for i in range(2000))


def read_from(stream):
    return lambda size: stream.read(size)


def test_gzip_bodies_are_read_like_the_gzip_module():
    packed = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]) + b"\x00" * 5   # two members, padded
    stream = io.BytesIO(packed)
    assert b"".join(_gunzip(stream.read(3), read_from(stream))) == DATA
    big = gzip.compress(b"0123456789" * 1_000_000)     # far more than one step of output
    stream = io.BytesIO(big)
    blocks = list(_gunzip(stream.read(100), read_from(stream)))
    assert b"".join(blocks) == b"0123456789" * 1_000_000 and max(map(len, blocks)) <= _INFLATE_LIMIT
    stream = io.BytesIO(packed[:len(packed) // 3])
    with pytest.raises(EOFError, match="Compressed file ended"):
        list(_gunzip(stream.read(10), read_from(stream)))
    damaged = bytearray(gzip.compress(DATA))
    damaged[-6] ^= 0xFF   # the CRC
    stream = io.BytesIO(bytes(damaged))
    with pytest.raises(zlib.error) as caught:
        list(_gunzip(stream.read(10), read_from(stream)))
    assert _reason(caught.value) == "crc check failed"


def test_csv_records_of_blocks_and_a_broken_body_saying_how_far_it_got():
    records = list(read_csv(iter([b'"Name","Risk"\n', DATA]), "domain risk list"))
    assert records[0] == ["Name", "Risk"] and len(records) == 2001 and records[1][3] == '{"EvidenceDetails": []}'

    def broken():
        yield DATA[:5000]
        raise zlib.error("Error -3 while decompressing data: incorrect header check")
    with pytest.raises(SourceError, match=r"^The download of the domain risk list broke off after \d+ rows "
                                          r"\(not a gzipped file\)"):
        list(read_csv(broken(), "domain risk list"))


def test_a_record_that_is_not_csv_is_a_bad_record_and_the_rest_is_read():
    body = b'"a","1"\n"b","' + b"x" * 200_000 + b'"\n"c","3"\n'
    records = list(read_csv(iter([body]), "list"))
    assert records[0] == ["a", "1"] and isinstance(records[1], BadRecord) and records[-1] == ["c", "3"]


CELLS = st.text(alphabet='ab ,"\n\r\\{}:', max_size=12)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(st.lists(CELLS, min_size=3, max_size=3), max_size=6), quoting=st.sampled_from(
    [csv.QUOTE_ALL, csv.QUOTE_MINIMAL]), raw=st.sampled_from([None, "A", "b", "C"]),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=5))
def test_the_quick_split_reads_as_the_csv_module_does(records, quoting, raw, cuts):
    # Recorded Future quotes every field; other writers quote only where needed. Either way, cut anywhere, the
    # records are those the csv module reads, the raw column in its CSV form (inner quotes doubled).
    text = io.StringIO(newline="")
    writer = csv.writer(text, quoting=quoting, lineterminator="\n")
    writer.writerow(["A", "B", "C"])
    writer.writerows(records)
    body = text.getvalue().encode()
    marks = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    got = list(read_csv(iter([body[a:b] for a, b in zip(marks, marks[1:])]), "list", raw=raw))
    index = "abc".index(raw.lower()) if raw else None
    read = csv.reader(io.StringIO(body.decode(), newline=""), skipinitialspace=True)
    expected = [[c.replace('"', '""') if i == index and n else c for i, c in enumerate(r)]
                for n, r in enumerate(read) if r]
    assert got == expected


def spooled(body, cuts, monkeypatch, block=64):
    """Return a Spooled of body handed over in pieces cut at cuts, with blocks of about block bytes."""
    monkeypatch.setattr(download, "BLOCK", block)
    marks = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    return Spooled(SimpleNamespace(what="list", blocks=lambda: iter([body[a:b] for a, b in zip(marks, marks[1:])]),
                                   close=lambda: None), raw="C")


def shared_out(spool, workers, monkeypatch):
    """Return the records workers 0 to workers - 1 read of a spool fed beside them, taken in turn, then the rest."""
    spool.start()
    shares = []
    for k in range(workers):
        monkeypatch.setattr(parallel, "_share", (k, workers))
        shares.append(list(spool.pages()))
    monkeypatch.setattr(parallel, "_share", None)
    in_turn = [page for turn in itertools.zip_longest(*shares) for page in turn if page is not None]
    return [record for page in in_turn for record in page] + list(spool.remainder())


@settings(max_examples=200, deadline=None)
@given(records=st.lists(st.lists(CELLS, min_size=3, max_size=3), max_size=40),
       cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8), workers=st.integers(1, 3))
def test_a_spooled_body_shared_out_in_blocks_reads_as_the_whole_body(records, cuts, workers):
    # Blocks end where a record ends, never inside a quoted field that holds newlines: worker k of n reading blocks
    # k, k + n, ... as the run feeds the file, and the run taking their pages in turn, get every record of the body
    # in its order; so does one process reading it.
    text = io.StringIO(newline="")
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["A", "B", "C"])
    writer.writerows(records)
    body = text.getvalue().encode()
    whole = list(read_csv(iter([body]), "list", raw="C"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        spool = spooled(body, cuts, monkeypatch)
        assert spool.names() == ["A", "B", "C"]
        assert shared_out(spool, workers, monkeypatch) == whole[1:] and list(spool) == whole[1:]
        spool.close()
        alone = spooled(body, cuts, monkeypatch)
        assert list(alone) == whole[1:]
        alone.close()


def test_a_spooled_body_leaves_no_file_and_a_broken_one_says_how_far_it_got(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(download.tempfile, "tempdir", None)
    spool = spooled(b'"Name","Risk"\n' + DATA, range(100, 120_000, 1000), monkeypatch, block=4096)
    assert len(list(spool)) == 2000 and len(spool.cuts) > 20 and os.listdir(tmp_path) == []   # unlinked at once
    spool.close()

    def broken():
        yield DATA[:5000]
        raise zlib.error("Error -3 while decompressing data: incorrect header check")
    with pytest.raises(SourceError, match=r"^The download of the list broke off after \d+ rows \(not a gzipped "):
        list(Spooled(SimpleNamespace(what="list", blocks=broken, close=lambda: None)))
    spool = Spooled(SimpleNamespace(what="list", blocks=broken, close=lambda: None))   # fed beside workers
    with pytest.raises(SourceError, match=r"broke off after \d+ rows"):
        shared_out(spool, 2, monkeypatch)


def test_a_temporary_folder_without_room_for_the_list_reads_the_rest_as_it_comes(monkeypatch, caplog):
    make = download.tempfile.TemporaryFile

    class Full:   # a folder with room for `room` bytes
        room = 3000

        def __init__(self):
            self.real, self.left = make(buffering=0), Full.room

        def write(self, data):
            if not self.left:
                raise OSError(28, "No space left on device")
            written = self.real.write(data[:self.left])
            self.left -= written
            return written

        def __getattr__(self, name):
            return getattr(self.real, name)
    monkeypatch.setattr(download.tempfile, "TemporaryFile", lambda **kwargs: Full())
    body = b'"Name","Risk"\n' + DATA
    whole = list(read_csv(iter([body]), "list"))[1:]
    spool = spooled(body, range(100, len(body), 1000), monkeypatch, block=1000)
    assert spool.names() == ["Name", "Risk"] and list(spool) == whole   # every record, in order, none twice
    assert not spool.shareable and "no room for the whole list" in caplog.text
    spool = spooled(body, range(100, len(body), 1000), monkeypatch, block=1000)
    assert shared_out(spool, 2, monkeypatch) == whole   # the workers' blocks, then the rest read by the run
    Full.room = 5
    with pytest.raises(SourceError, match=r"has no room for even the header of the list") as raised:
        spooled(body, range(100, len(body), 1000), monkeypatch)
    assert "TMPDIR" in raised.value.fix


def test_a_body_that_cannot_be_cut_into_blocks_is_read_by_one_process(monkeypatch):
    # A stray quote early on leaves the rest of the body inside quotes for the cutter: no block could be read apart.
    # The run then reads the whole body (as it would as it comes, a long quoted run a counted skip).
    monkeypatch.setattr(download, "MAX_LINE", 200)
    body = b'"Name","Risk"\n"a","1\n' + b"".join(b'"host-%d","%d"\n' % (i, i) for i in range(300))
    whole = [str(r) for r in list(read_csv(iter([body]), "list", raw="C"))[1:]]
    spool = spooled(body, range(0, len(body), 100), monkeypatch, block=64)
    assert [str(r) for r in spool] == whole and not spool.shareable and whole[0].startswith("line longer than")
    spool = spooled(body, range(0, len(body), 100), monkeypatch, block=64)
    assert [str(r) for r in shared_out(spool, 2, monkeypatch)] == whole
    empty = spooled(b"", [], monkeypatch)
    assert empty.names() == [] and list(empty) == [] and list(empty.pages()) == []
