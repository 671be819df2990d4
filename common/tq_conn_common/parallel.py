"""Rows made on every core: a stream whose pages can be shared out is read by forked worker processes, worker k of n
fetching, decoding and turning into rows pages k, k + n, k + 2n, ..., and the run gets the rows back in page order.

Decoding vendor JSON and making rows is Python work that one process does on one core at a time; a worker per core
divides it. Each worker is a fork of the run taken after the source was set up (logged in, the collection found),
with its own connections (it never uses the run's); it sends each page of rows through a pipe, pickled, and ends
with its request count. A worker error is raised in the run as the worker raised it. The workers die with the run:
when it stops reading (an error, a signal, the end) it kills them, and a worker whose run is gone dies on its own.
Only the rows travel back; what is delivered, counted and committed stays with the run.
"""

import gc
import os
import pickle
import signal

from tq_conn_common.errors import SourceError

MAX_WORKERS = 4
_share = None      # (k, n) in worker k of n; None in the run itself
_pages_in_list = None   # in a worker: how many pages the list has, as the last page its pager read says


def note_pages(count):
    """In a worker: say how many pages the whole list has (from the total the source announced); the run takes
    no page past the fewest any worker saw, as one reader would stop there."""
    global _pages_in_list
    _pages_in_list = count


def share():
    """Return (k, n) in worker k of n workers, None outside a worker: pagers fetch the pages that are theirs."""
    return _share


def workers():
    """Return how many workers a run should use: one per core it may run on (TQ_CONN_WORKERS sets it), at most
    MAX_WORKERS; 1 means none (the run reads by itself)."""
    wanted = os.environ.get("TQ_CONN_WORKERS", "").strip()
    if wanted.isdigit():
        return max(1, min(int(wanted), MAX_WORKERS))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def pages(make, count, clients=(), stats=None, started=None):
    """Yield the pages (lists) that make() yields in each of count forked workers, in page order: the first page of
    worker 0, of worker 1, ..., then the second of each. In worker k, share() is (k, count). clients: the run's
    HTTP clients, whose connections a worker must not share (each worker opens its own). stats: the run's Stats,
    given each worker's requests. started(): called in the run once every worker is forked (a thread may start
    then, none may run at a fork)."""
    children = []
    gc.freeze()   # what the run holds stays out of the workers' collections: their pages of memory stay shared
    collecting = gc.isenabled()
    gc.disable()  # the rows coming back are tuples of texts, without cycles: freed by reference counting
    try:
        for k in range(count):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:   # the worker: never returns
                os.close(read)
                for _, fd, _ in children:
                    os.close(fd)
                _work(make, k, count, write, clients, stats)
            os.close(write)
            children.append((pid, read, os.fdopen(read, "rb", buffering=1 << 20, closefd=False)))
        if started is not None:
            started()
        live, index, last = list(children), 0, None
        while live:
            for child in list(live):
                kind, value, requests, noted = pickle.load(child[2])
                if stats is not None:
                    stats.requests += requests   # counted as they come: a run that stops early misses none
                if kind == "page":
                    if noted is not None:
                        last = noted if last is None else min(last, noted)
                    if last is not None and index >= last:
                        return   # past the end of the list as a worker saw it: the list changed while read
                    index += 1
                    yield value
                    continue
                live.remove(child)
                if kind == "error":
                    raise value
    except EOFError:
        raise SourceError("A worker process reading the source ended without a word (killed, or out of memory?).",
                          "run again; TQ_CONN_WORKERS=1 makes a run read in one process.", retryable=True) from None
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()
        for pid, fd, stream in children:
            stream.close()
            os.close(fd)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


def _work(make, k, count, fd, clients, stats):
    """Run make() in worker k, sending each page it yields, then its request count or its error; exit."""
    global _share, _pages_in_list
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C: the run stops and kills the workers
        _die_with_parent()
        _share, _pages_in_list = (k, count), None
        gc.disable()   # pages and rows are trees without cycles, freed by reference counting as they go
        for client in clients:
            client.session.close()   # the run's connections stay the run's: new ones are opened on first use
        sent = [stats.requests if stats is not None else 0]

        def send(kind, value):   # with the requests made since the last message, and the list's length if known
            made = stats.requests if stats is not None else 0
            out.write(pickle.dumps((kind, value, made - sent[0], _pages_in_list), protocol=pickle.HIGHEST_PROTOCOL))
            out.flush()   # whole messages only: one that cannot be pickled leaves nothing half written
            sent[0] = made

        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            try:
                for page in make():
                    send("page", page)
                send("end", None)
                code = 0
            except Exception as exc:   # handed to the run, which raises it
                try:
                    send("error", exc)
                except Exception:   # noqa: BLE001  - an error that cannot travel is named instead
                    send("error", RuntimeError(f"{type(exc).__name__}: {exc}"))
    except BaseException:   # the run is gone (broken pipe) or killed us: nothing to tell
        pass
    finally:
        os._exit(code)


def _die_with_parent():
    """Ask Linux to kill this worker when the run that forked it dies (elsewhere a closed pipe ends it)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os._exit(1)


__all__ = ["share", "workers", "pages", "note_pages", "MAX_WORKERS"]
