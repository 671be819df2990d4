"""One run of the Flashpoint connector against the stand-ins: indicators over the limits skipped, the rest delivered."""

import json
import re
import time

import pytest
import yaml

from tq_conn_common import MAX_CELL
from tq_conn_common.rows import MAX_DEPTH, MAX_KEYS
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.flashpoint import TOKEN_BASE64

pytestmark = pytest.mark.e2e

LOOKUP = "Threatintel_Flashpoint_Intelligence_Domain"


def _publish(sandbox, domain, **more):
    """Add a domain attribute indexed a minute ago (inside the first run's window) with more keys; return it."""
    doc = sandbox["flashpoint"].publish("domain", indexed_at=time.time() - 60)[0]
    doc["value"] = {"domain": domain}
    doc.update(more)
    return doc


def test_indicators_over_the_limits_are_skipped_and_the_others_delivered(sandbox, cli, tmp_path):
    at_limit = ('say "a,b"\n' * MAX_CELL)[:MAX_CELL]    # quotes, commas, line breaks: CSV escaping at work
    _publish(sandbox, "wide.example.com", **{f"k{i}": i for i in range(MAX_KEYS)})
    _publish(sandbox, "deep.example.com", Event=json.loads('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH))
    _publish(sandbox, "huge.example.com", comment="c" * (MAX_CELL + 1))
    _publish(sandbox, "full.example.com", comment=at_limit)
    (tmp_path / "tq-conn-flashpoint.yaml").write_text(yaml.safe_dump({
        "bearer_token_base64": TOKEN_BASE64, "alerts_enabled": False,
        "lookups": [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}}],
        "indicators_url": sandbox.url("flashpoint") + "/api/v4", "devo_transport": "rest",
        "devo_lookups_url": sandbox.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
        "devo_domain": DEFAULT_DOMAIN}))
    result = cli("tq-conn-flashpoint", "-c", tmp_path, "-v", "2")
    assert result.code == 0, result.both
    for reason in (f"indicator has more than {MAX_KEYS} keys", f"indicator nested more than {MAX_DEPTH} levels deep",
                   f"indicator key comment has a name or value of {MAX_CELL + 1} characters"):
        assert re.search(rf"Skipped indicator: {reason}.*\(type='domain', fpid='[^']+'\)", result.both), reason
    assert "skipped as invalid 3" in result.both
    view = sandbox["devo"].lookup(LOOKUP)
    rows = {row["value.domain"]: row for row in view["rows"]}
    assert {"wide.example.com", "deep.example.com", "huge.example.com"}.isdisjoint(rows)
    assert rows["full.example.com"]["comment"] == at_limit
    columns = set(rows["full.example.com"])
    assert len(rows) > 50 and "k0" not in columns and not any(c.startswith("Event.a.a") for c in columns)
