"""Large lists downloaded as a stream: the body read in blocks (a gzip file inflated on the fly) and read as CSV
records, so that memory does not grow with the size of the list."""

import csv
import io
import logging
import zlib

import urllib3

from tq_conn_common.errors import BadRecord, SourceError

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024       # bytes read from the connection at a time
_INFLATE_LIMIT = 1 << 20     # most bytes one step of decompression gives
# A record with a field longer than the csv module's limit (128 KiB, about a Devo lookup cell) is a counted skip.
_BROKEN = (urllib3.exceptions.HTTPError, OSError, EOFError, zlib.error)


def etag(client, url, quiet=("failing", "refused"), **kwargs):
    """Return the etag a HEAD of url announces, or None when it gives none or fails in one of the quiet ways."""
    try:
        response = client.request("HEAD", url, expect=(200,), **kwargs)
    except SourceError as exc:
        if exc.kind not in quiet:
            raise
        log.info("HEAD %s answered HTTP %s; downloading to compare instead.", url.split("?")[0], exc.status)
        return None
    response.close()
    return response.headers.get("etag")


class Download:
    """A streamed GET: its etag, and its body in blocks or as CSV records. Use it in a with block."""

    def __init__(self, client, url, what, **kwargs):
        self.what = what
        self.response = client.request("GET", url, stream=True, **kwargs)
        self.etag = self.response.headers.get("etag")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Let the connection go."""
        self.response.close()

    def blocks(self):
        """Yield the body in blocks of bytes; a body that is a gzip file (not only gzip-encoded) is inflated."""
        raw = self.response.raw
        raw.decode_content = True  # a Content-Encoding: gzip transfer is undone by urllib3
        block = raw.read(READ_SIZE)
        if block[:2] == b"\x1f\x8b":
            yield from _gunzip(block, raw.read)
            return
        while block:
            yield block
            block = raw.read(READ_SIZE)

    def records(self):
        """Yield the header (a list of names), then each CSV record (see read_csv) of the body."""
        return read_csv(self.blocks(), self.what)


def read_csv(blocks, what):
    """Yield the header (a list of names), then each CSV record as a list of texts, from blocks of bytes cut
    anywhere; a record that is not CSV comes as a BadRecord. A broken or corrupt body raises SourceError saying how
    far it got (what: how the message names the list)."""
    reader = csv.reader(io.TextIOWrapper(io.BufferedReader(_Blocks(blocks), READ_SIZE), encoding="utf-8-sig",
                                         errors="replace", newline=""), skipinitialspace=True)
    count = 0
    try:
        while True:
            try:
                record = next(reader)
            except csv.Error as exc:
                count += 1
                yield BadRecord(f"row is not CSV ({exc})", line=reader.line_num)
                continue
            except StopIteration:
                return
            if record:
                count += 1
                yield record
    except _BROKEN as exc:
        raise SourceError(f"The download of the {what} broke off after {max(0, count - 1)} rows ({_reason(exc)}).",
                          "run again; the lookups were left as they were and the next run pulls the list again.",
                          retryable=True) from None


class _Blocks(io.RawIOBase):
    """The blocks of an iterator as a readable raw stream."""

    def __init__(self, blocks):
        self._blocks, self._rest = blocks, b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._rest:
            self._rest = next(self._blocks, b"")
            if not self._rest:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


def _gunzip(block, read):
    """Yield the decompressed blocks of a gzip file whose first block is given; read(size) returns the next ones.

    Like the gzip module, members may follow one another and zero bytes may pad the end; output comes in blocks of
    at most _INFLATE_LIMIT bytes however well the data compresses.
    """
    inflate = zlib.decompressobj(31)
    full = False  # the last call filled its output: zlib may hold more even without more input
    while block or full:
        if inflate.eof:
            block = block.lstrip(b"\x00")
            if not block:
                block = read(READ_SIZE)
                continue
            inflate = zlib.decompressobj(31)
        data = inflate.decompress(block, _INFLATE_LIMIT)
        full = len(data) == _INFLATE_LIMIT and not inflate.eof
        block = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
        if data:
            yield data
        if not block and not full:
            block = read(READ_SIZE)
    if not inflate.eof:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _reason(exc):
    text = str(exc)
    for marker, reason in (("IncompleteRead", "the connection closed early"), ("Connection broken", None),
                           ("Read timed out", None), ("Compressed file ended", None),
                           ("incorrect data check", "crc check failed"),
                           ("incorrect header check", "not a gzipped file"), ("invalid", None), ("reset", None)):
        if marker.lower() in text.lower():
            return reason or marker.lower()
    return type(exc).__name__


__all__ = ["Download", "etag", "read_csv", "READ_SIZE"]
