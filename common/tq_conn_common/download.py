"""Large lists downloaded as a stream: the body read in blocks (a gzip file inflated on the fly), spooled to a
private temporary file cut where records end, and read back as CSV records by one process or several, so that
memory does not grow with the size of the list; a total deadline, a size limit, an inflation limit and a line limit
bound what a hostile or broken server can make a run do."""

import codecs
import csv
import io
import itertools
import logging
import mmap
import os
import tempfile
import threading
import time
import zlib

import urllib3

from tq_conn_common import http, parallel
from tq_conn_common.errors import BadRecord, SourceError

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024       # bytes read from the connection at a time
BLOCK = 1 << 20              # bytes of a spooled body's block (at least; it ends where a record ends)
_INFLATE_LIMIT = 1 << 20     # most bytes one step of decompression gives
# A record with a field longer than the csv module's limit (128 KiB, about a Devo lookup cell) is a counted skip.
_FIELD_LIMIT = csv.field_size_limit()
_SEP = '","'       # between two quoted fields
_BROKEN = (urllib3.exceptions.HTTPError, OSError, EOFError, zlib.error)
_MIB = 1 << 20


def _limit(name, default_mib):
    try:
        return int(float(os.environ.get(name, default_mib)) * _MIB)
    except ValueError:
        return int(default_mib * _MIB)


MAX_SIZE = _limit("TQ_CONN_MAX_DOWNLOAD_MB", 4096)   # inflated bytes of one list (the largest real ones: a few 100 MB)
MAX_LINE = _limit("TQ_CONN_MAX_LINE_MB", 8)          # characters of one line: a longer one is a counted skip
_TOO_LONG = object()                                 # what _lines yields for a line it dropped


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
    """A streamed GET: its etag, and its body in blocks or spooled to disk (spooled()). Use it in a with block, or
    hand it to spooled(), which closes it."""

    def __init__(self, client, url, what, *, max_size=None, **kwargs):
        self.what = what
        self.service = client.service.name
        self.started = time.monotonic()
        self.deadline = client.deadline
        left = http.time_left()
        if left is not None:
            self.deadline = min(self.deadline, max(left, 0.0))
        self.max_size = MAX_SIZE if max_size is None else max_size
        self.size = 0
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
        block = self._read(READ_SIZE)
        if block[:2] == b"\x1f\x8b":
            blocks = _gunzip(block, self._read)
        else:
            blocks = iter(lambda: self._read(READ_SIZE), b"")
            blocks = _chain(block, blocks)
        for block in blocks:
            self.size += len(block)
            if self.size > self.max_size:
                self._stop(f"is larger than the limit of {self.max_size // _MIB} MiB", "TQ_CONN_MAX_DOWNLOAD_MB")
            if self.size > 16 * _MIB and self.size > http.MAX_INFLATE * max(raw.tell(), 1):
                self._stop(f"inflates more than {http.MAX_INFLATE:g} times its compressed size",
                           "TQ_CONN_MAX_INFLATE_RATIO")
            yield block

    def _read(self, size):
        """Return up to size bytes of the body (b"" at its end), as they come, within the deadline."""
        raw, parts, got = self.response.raw, [], 0
        while got < size:
            if time.monotonic() - self.started > self.deadline:
                raise SourceError(f"The download of the {self.what} from {self.service} did not finish within "
                                  f"{self.deadline:.0f} s ({self.size + got} bytes came, slowly).",
                                  "check the network and any proxy; run again later (TQ_CONN_HTTP_DEADLINE sets the "
                                  "seconds one download may take). The lookups were left as they were.",
                                  retryable=True)
            part = raw.read1(size - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _stop(self, what, variable):
        raise SourceError(f"The download of the {self.what} from {self.service} {what}; the run stopped reading it.",
                          f"check the URL of the list; if it is really this large, raise {variable}. The lookups "
                          "were left as they were.")

    def spooled(self, raw=None):
        """Read the whole body into a Spooled: its CSV records then read from disk, by one process or shared out
        among worker processes."""
        return Spooled(self, raw)




class Spooled:
    """The CSV body of a download in a private temporary file (gone once closed; nothing left behind), cut into
    blocks that end where a record ends (a newline outside quotes). Iterating yields the records after the header
    (see read_csv); pages() yields the records of each block that is this process's share (parallel.share()), so
    that worker k of n parses and maps blocks k, k + n, ... and the run gets them back in order. Blocks are read
    from disk in pieces, so that memory stays as flat as when the body is read as it comes.

    Only the header is read at first. Iterating reads the rest first; with workers, start() feeds the file in a
    thread of the run while they parse the blocks already cut (the cuts go to them through shared memory), and
    remainder() then yields what they could not take: the records after the last cut when the temporary folder
    ran out of room (the rest is read from the connection) or a stretch longer than any record ends nowhere
    (shareable turns False). close() stops the feeding.
    """

    def __init__(self, download, raw=None):
        self.what, self.raw, self.download = download.what, raw, download
        self.file = tempfile.TemporaryFile(prefix="tq-conn-", buffering=0)
        self.shareable, self.rest, self.error = True, None, None   # rest: blocks to come when the folder was full
        self.cuts, self._quotes, self._at = [0], 0, 0
        self._blocks, self._thread, self._stop = download.blocks(), None, threading.Event()
        # Shared with the workers: how many cuts are published; 0 while more may come, else minus their final
        # number (one word: read alone, it cannot be seen out of step with the count); then the cuts.
        self._told = memoryview(mmap.mmap(-1, 8 * (MAX_SIZE // BLOCK + 8))).cast("q")
        self._told[0] = 1
        try:
            self._feed(header=True)
        except BaseException:
            self.file.close()
            raise
        self.header = self._read(0, min(self.cuts[1], MAX_LINE + 1) if len(self.cuts) > 1 else 0)

    def _feed(self, header=False):
        """Spool the body, publishing each cut; only up to the end of the header when header is True."""
        try:
            for block in self._blocks:
                written = self._write(block)
                self._at += written
                if written < len(block):
                    self.rest, self.shareable = itertools.chain((block[written:],), self._blocks), False
                    break
                self._cut(block, written)
                if (header and len(self.cuts) > 1) or self._stop.is_set():
                    return
            if self.rest is not None and len(self.cuts) < 2:
                raise SourceError(f"The temporary folder {tempfile.gettempdir()} has no room for even the header of "
                                  f"the {self.what}.", "free some space there, or set TMPDIR to a folder with room; "
                                  "the lookups were left as they were.")
        except _BROKEN as exc:
            self.download.close()
            raise SourceError(f"The download of the {self.what} broke off after {max(0, self._lines() - 1)} rows "
                              f"({_reason(exc)}).", "run again; the lookups were left as they were and the next run "
                              "pulls the list again.", retryable=True) from None
        except BaseException:
            self.download.close()
            raise
        if self._at > self.cuts[-1] and self.shareable:
            self._publish(self._at)
        self._end()
        if self.rest is None:
            self.download.close()

    def _cut(self, block, size):
        """Cut after the block's last record end once a block is long enough (the first cut ends the header)."""
        at, quotes, count = self._at - size, self._quotes, block.count(b'"')
        if len(self.cuts) == 1:
            end = _record_end(block, quotes, count, first=True)
            if end:
                self._publish(at + end)
        end = _record_end(block, quotes, count)
        if self.shareable and end and at + end - self.cuts[-1] >= BLOCK:
            self._publish(at + end)
        elif self.shareable and self._at - self.cuts[-1] > MAX_LINE + 4 * BLOCK and len(self.cuts) > 1:
            self.shareable = False
            self._end()
        self._quotes += count

    def _publish(self, cut):
        self.cuts.append(cut)
        self._told[1 + len(self.cuts)] = cut
        self._told[0] = len(self.cuts)

    def _end(self):
        """Tell the workers no more cuts come (the run reads what follows the last one)."""
        self._told[1] = -len(self.cuts)

    def _write(self, block):
        """Write block at the end of the file; return how much of it went (less: the folder has no more room)."""
        written = 0
        try:
            while written < len(block):
                written += self.file.write(block[written:])
        except OSError as exc:
            log.warning("The temporary folder %s has no room for the whole %s (%s); the rest is read as it comes, "
                        "by one process (TMPDIR sets the folder).", tempfile.gettempdir(), self.what,
                        exc.strerror or exc)
        return written

    def _lines(self):
        """Return how many lines the file holds so far."""
        return sum(self._read(at, min(at + BLOCK, self._at)).count(b"\n") for at in range(0, self._at, BLOCK))

    def _read(self, start, end):
        return os.pread(self.file.fileno(), end - start, start)   # no shared file offset: workers read it too

    def names(self):
        """Return the header's names (a list), [] when the body is empty."""
        return next(read_csv((self.header,), self.what, self.raw), [])

    def start(self):
        """Feed the rest of the body in a thread of the run (call it once the workers are forked)."""
        def feed():
            try:
                self._feed()
            except BaseException as exc:   # raised in the run by remainder()
                self.error = exc
                self._end()
        self._thread = threading.Thread(target=feed, name="spool", daemon=True)
        self._thread.start()

    def pages(self):
        """In worker k of n, yield the records of blocks k, k + n, ... as their cuts come, a list each."""
        told, (k, n) = self._told, parallel.share() or (0, 1)
        i = 1 + k
        while True:
            ended = told[1]
            count = -ended if ended else told[0]
            start, end = (told[2 + i], told[3 + i]) if count >= i + 2 else (0, 0)
            if end > start > 0:   # (a cut not seen yet reads 0: wait for it)
                yield list(self._records(start, end))
                i += n
            elif ended and count < i + 2:
                return
            else:
                time.sleep(0.001)

    def remainder(self):
        """Once the workers are done: the records after the last block they could take (none, usually)."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self._records(self.cuts[-1], self._at, self.rest)

    def __iter__(self):
        self._feed()
        try:
            yield from self._records(self.cuts[1] if len(self.cuts) > 1 else 0, self._at, self.rest)
        finally:
            self.download.close()

    def _records(self, start, end, rest=None):
        """Yield the records from offset start to end, then of the blocks rest yields, the header read before them
        as the file has it."""
        pieces = (self._read(at, min(at + BLOCK, end)) for at in range(start, end, BLOCK))
        records = read_csv(itertools.chain((self.header,), pieces, rest or ()), self.what, self.raw)
        next(records, None)
        return records

    def close(self):
        """Stop feeding; let the file and the download go."""
        self._stop.set()
        if not self._told[1]:
            self._end()   # a worker still waiting for a cut ends
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.file.close()
        self.download.close()


def _record_end(block, quotes, count, first=False):
    """Return the offset in block just past its last (or first) newline outside quotes (quotes: how many came
    before the block; count: how many it holds), or 0 when a few tries find none (a block inside one long quoted
    field: a later one ends it). Quotes are counted on the short side of the newline."""
    end = block.find(b"\n") if first else block.rfind(b"\n")
    for _ in range(64):
        if end < 0:
            return 0
        before = block.count(b'"', 0, end) if first else count - block.count(b'"', end)
        if (quotes + before) % 2 == 0:
            return end + 1
        end = block.find(b"\n", end + 1) if first else block.rfind(b"\n", 0, end)
    return 0


def read_csv(blocks, what, raw=None):
    """Yield the header (a list of names), then each CSV record as a list of texts, from blocks of bytes cut
    anywhere; a record that is not CSV comes as a BadRecord. A broken or corrupt body raises SourceError saying how
    far it got (what: how the message names the list).

    raw names one column (case aside) handed over in its CSV form, inner quotes still doubled: a long field that is
    read with patterns is not unquoted. The usual lines (every field quoted, quotes only in the raw field) are split
    without the csv module; the others go through it.
    """
    count, split, pending, quotes, feed, held = 0, None, None, 0, _Feed(), 0
    try:
        for line in _lines(blocks):
            if line is _TOO_LONG or (pending is not None and held + len(line) > MAX_LINE):
                count += 1
                pending = None
                yield BadRecord(f"line longer than {MAX_LINE // _MIB} MiB (TQ_CONN_MAX_LINE_MB)")
                continue
            if pending is not None:             # the lines of a record whose quoted field goes on
                pending.append(line)
                held += len(line)
                quotes += line.count('"')
                if quotes % 2:
                    continue
                lines, pending = pending, None
            else:
                if split is not None:
                    fields = split(line)
                    if fields is not None:
                        count += 1
                        yield fields
                        continue
                quotes = line.count('"')
                if quotes % 2:
                    pending, held = [line], len(line)
                    continue
                lines = (line,)
            for record in feed.read(lines, split and split.raw):
                count += 1
                if count == 1 and type(record) is list:
                    split = _splitter(record, raw)
                yield record
        if pending is not None:
            yield from feed.read(pending, split and split.raw)
    except _BROKEN as exc:
        raise SourceError(f"The download of the {what} broke off after {max(0, count - 1)} rows ({_reason(exc)}).",
                          "run again; the lookups were left as they were and the next run pulls the list again.",
                          retryable=True) from None


def _lines(blocks):
    """Yield the lines of blocks of UTF-8 bytes (a '\r' before the newline kept)."""
    decode = codecs.getincrementaldecoder("utf-8-sig")("replace").decode
    tail, dropping = "", False
    for block in blocks:
        lines = decode(block).split("\n")
        lines[0] = tail + lines[0]
        tail = lines.pop()
        if dropping and lines:      # the end of a line too long to keep
            del lines[0]
            dropping = False
            yield _TOO_LONG
        yield from lines
        if len(tail) > MAX_LINE:    # a line (or one field) longer than any real one: not held in memory
            tail, dropping = "", True
    if dropping:
        yield _TOO_LONG
        return
    tail += decode(b"", True)
    if tail:
        yield tail


class _Feed:
    """Lines handed to one csv reader as the file would hand them over: what the quick split leaves is read without
    a new reader."""

    def __init__(self):
        self.lines = iter(())
        self.reader = csv.reader(self, skipinitialspace=True)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.lines)

    def read(self, lines, raw):
        """Return the records of lines (one, or those of a quoted field that goes on), each a BadRecord if it is
        not CSV; the raw field (an index) with its inner quotes doubled again."""
        line = lines[0]
        if len(lines) == 1 and line.find("\r", 0, len(line) - 1) < 0:
            self.lines = iter((line + "\n",))
        else:   # a lone '\r' ends a line as well
            self.lines = iter(io.StringIO("\n".join(lines) + "\n", newline=""))
        records = []
        while True:
            try:
                record = next(self.reader, None)
            except csv.Error as exc:
                records.append(BadRecord(f"row is not CSV ({exc})"))
                continue
            if record is None:
                return records
            if raw is not None and len(record) > raw:
                record[raw] = record[raw].replace('"', '""')
            if record:
                records.append(record)


def _splitter(header, raw):
    """Return a function splitting a usual line of a list with this header into its fields, None for the others."""
    names = [str(n).strip().lower() for n in header]
    index = names.index(raw.lower()) if raw and raw.lower() in names else None
    width, after = len(names), len(names) - 1 - (index or 0)

    def split(line):
        if line[-1:] == "\r":
            line = line[:-1]
        if not 2 <= len(line) <= _FIELD_LIMIT or line[0] != '"' or line[-1] != '"':
            return None     # (a longer line may hold a field over the csv module's limit: it decides)
        if index is None:
            fields = line[1:-1].split(_SEP)
            return fields if len(fields) == width and line.count('"') == 2 * width else None
        fields = line[1:-1].split(_SEP, index)          # the fields before the raw one, then the rest
        if len(fields) != index + 1:
            return None
        tail = fields.pop().rsplit(_SEP, after) if after else [fields.pop()]
        cell = tail[0]
        # Every quote outside the raw cell opens, closes or separates (none is left in the other fields); inside it
        # they come in pairs.
        if len(tail) != after + 1 or '"' in "".join(fields) or '"' in "".join(tail[1:]) or \
                cell.count('"') != 2 * cell.count('""'):
            return None
        fields += tail
        return fields

    split.raw = index
    return split


def _chain(first, rest):
    if first:
        yield first
    yield from rest


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


__all__ = ["Download", "Spooled", "etag", "read_csv", "READ_SIZE", "BLOCK", "MAX_SIZE", "MAX_LINE"]
