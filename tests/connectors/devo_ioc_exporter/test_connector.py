"""The Devo IOC Exporter declaration: prompts, UI parameters and their definition, lock keys, lookup columns."""

from tq_conn_common import config as cfg
from tq_conn_devo_ioc_exporter.connector import CONNECTOR, IOCS, PARAMS


def test_the_first_run_prompts_are_the_vendor_guides_five_in_order():
    asked = [p.label for p in PARAMS if p.asked and not p.ui]
    assert asked == ["ThreatQ Host", "ThreatQ Client ID", "ThreatQ Username", "ThreatQ Password", "Status"]
    password = next(p for p in PARAMS if p.key == "threatq_password")
    assert password.secret
    assert next(p for p in PARAMS if p.key == "status").default == "Review"


def test_the_ui_parameters_are_the_configuration_tab():
    labels = [p.label for p in PARAMS if p.ui]
    assert labels == ["Devo API Region", "Devo API Token", "Devo Domain", "Devo Transport", "Devo X.509 Certificate",
                      "Devo X.509 Private Key", "Devo X.509 Chain CA", "Lookup Table Name", "ThreatQ Data Collection Name",
                      "ThreatQ Hostname", "Batch Size", "Allow Multiple Runs", "Kill Previous Runs After X Seconds"]


def test_the_ui_definition_is_generated_from_the_declaration():
    fields = {f["name"]: f for f in cfg.ui_definition(PARAMS)}
    assert fields["batch_size"]["type"] == "number" and fields["batch_size"]["default"] == 1000
    assert fields["devo_region"]["type"] == "select" and fields["devo_region"]["options"] == ["us", "eu", "ca", "ap"]
    assert fields["devo_key"]["type"] == "textarea" and fields["devo_key"]["masked"]
    assert fields["devo_token"]["type"] == "password"
    assert fields["allow_multiple_runs"]["type"] == "checkbox" and fields["allow_multiple_runs"]["default"] is False
    assert fields["lookup_name"]["required"] and fields["collection_name"]["required"]
    assert "threatq_password" not in fields


def test_the_lock_keys_are_declared_booleans_and_seconds():
    allow, kill = CONNECTOR.lock_params
    params = {p.key: p for p in PARAMS}
    assert params[allow].type is bool and params[allow].default is False
    assert params[kill].type is int and params[kill].default == 0


def test_the_lookup_is_keyed_by_value_with_typed_columns():
    assert IOCS.key == "value" and IOCS.name_from == "lookup_name"
    types = {c.name: c.type for c in IOCS.columns}
    assert types["score"] == "float" and types["has_adversary"] == "int"
    assert list(types) == ["value", "type", "status", "score", "link", "attack_phase", "threat_type", "adversary",
                           "has_adversary", "created_at", "updated_at"]
