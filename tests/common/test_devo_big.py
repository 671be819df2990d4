"""A million rows through each Devo transport (slow: only with TQ_CONN_BIG=1); peak RSS of the delivering process."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "devo_1m.py"
# A connector process holds the interpreter, requests, cryptography and devo-sdk (about 40 to 170 MB depending on
# what was imported); the key set of dedupe adds about 100 MB for a million keys. Memory must not grow further.
PEAK_LIMIT_MB = 400

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("TQ_CONN_BIG"), reason="set TQ_CONN_BIG=1 for the 1M-row runs")]


@pytest.mark.parametrize("transport", ["rest", "tls"])
def test_a_million_rows(transport):
    proc = subprocess.run([sys.executable, str(BENCH), "--transport", transport], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    small, big = results
    assert big["rows"] == big["landed"] == 1_000_000
    assert "Traceback" not in proc.stderr and "timed out" not in proc.stderr.lower()
    assert big["peak_rss_mb"] < PEAK_LIMIT_MB
    # Flat: what a million rows add is the dedupe key set, not the rows themselves.
    assert big["peak_rss_mb"] - small["peak_rss_mb"] < 150
