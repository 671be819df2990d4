"""Reads the Devo collector `config.yaml` (globals / outputs.devo_1 / inputs.<name>) into our parameter keys."""

import logging
import os

from tq_conn_common.config import read_file

log = logging.getLogger(__name__)

FILENAME = "config.yaml"


def loader(input_name, extra=None):
    """Return a Connector's load_config(config_dir, name): load() of inputs.<input_name>."""
    return lambda config_dir, name=None: load(config_dir, input_name, extra)


def load(config_dir, input_name, extra=None):
    """Return raw values from <config_dir>/config.yaml in the collector form, or None if there is none.

    outputs.devo_1 gives devo_host, devo_port and the certificate files (names resolved under certs/, beside
    config.yaml or, as the collector lays them out, beside its config/ folder);
    inputs.<input_name> gives its keys, with every services.<service>.<key> and credentials.<key> lifted to <key>
    (a credentials that is not a mapping stays as it is, for the connector to name);
    extra(input_section, raw) may add connector-specific translations.
    """
    path = os.path.join(config_dir, FILENAME)
    if not os.path.exists(path):
        return None
    data = read_file(path)
    if not isinstance(data.get("inputs"), dict) or input_name not in data["inputs"]:
        return None
    raw = Values()
    output = ((data.get("outputs") or {}).get("devo_1") or {}).get("config") or {}
    if output:
        if output.get("address"):
            raw["devo_host"] = output["address"]
        if output.get("port"):
            raw["devo_port"] = output["port"]
        for key in ("cert", "key", "chain"):
            name = output.get(key)
            if name:
                # certs/ beside config.yaml, the file itself there, or the collector layout: config/ and certs/
                # side by side in the collector's folder.
                candidates = [os.path.join(config_dir, "certs", str(name)), os.path.join(config_dir, str(name)),
                              os.path.join(os.path.dirname(os.path.abspath(config_dir)), "certs", str(name))]
                raw[f"devo_{key}"] = next((c for c in candidates if os.path.exists(c)), candidates[0])
        raw["devo_transport"] = "tls"
    section = data["inputs"][input_name] or {}
    for key, value in section.items():
        if key == "services" and isinstance(value, dict):
            for service in value.values():
                if isinstance(service, dict):   # less a service's own switch and the collector's own schedule
                    raw.update((k, v) for k, v in service.items() if k not in ("enabled", "request_period_in_seconds"))
        elif key == "credentials" and isinstance(value, dict):
            for name, secret in value.items():
                raw.setdefault(name, secret)
        elif key not in ("id", "enabled"):
            raw[key] = value
    if section.get("enabled") is False:
        log.warning("The input '%s' is disabled in %s (enabled: false).", input_name, path)
    if (data.get("globals") or {}).get("debug") is True:
        raw.setdefault("_debug", True)
    if extra:
        extra(section, raw)
    raw.pop("_debug", None)
    raw.origins = {key: f"{path} ({_where(key, input_name, section)})" for key in raw}
    log.info("Read the collector configuration %s (input '%s').", path, input_name)
    return raw


class Values(dict):
    """Raw values read from config.yaml; origins names, for each key, where it is set there."""

    origins = {}


def _where(key, input_name, section):
    """Return the path in config.yaml of the value of one of our keys: a key of the input, of one of its services,
    of its credentials, or of the Devo output."""
    if key in section:
        return f"inputs.{input_name}.{key}"
    for service, values in (section.get("services") or {}).items() if isinstance(section.get("services"), dict) else ():
        if isinstance(values, dict) and key in values:
            return f"inputs.{input_name}.services.{service}.{key}"
    if isinstance(section.get("credentials"), dict) and key in section["credentials"]:
        return f"inputs.{input_name}.credentials.{key}"
    output = {"devo_host": "address", "devo_port": "port", "devo_cert": "cert", "devo_key": "key", "devo_chain": "chain"}
    if key in output:
        return "outputs.devo_1.config." + output[key]
    if key == "devo_transport":
        return "outputs.devo_1"
    return f"inputs.{input_name}"


__all__ = ["loader", "load", "FILENAME", "Values"]
