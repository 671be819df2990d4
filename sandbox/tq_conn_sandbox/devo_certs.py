"""tq-conn-sandbox devo-certs: fetch a client bundle from a running Devo stand-in and write it as files."""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

from tq_conn_sandbox.ports import default_port
from tq_conn_sandbox.services import available
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, Devo


def certs_command(argv):
    """Write a client certificate, key, chain and devo.yaml from the running Devo stand-in; return the exit code."""
    default = f"http://127.0.0.1:{default_port(Devo.name, available())}"
    parser = argparse.ArgumentParser(
        prog="tq-conn-sandbox devo-certs",
        description="Write <domain>.crt, <domain>.key, chain.crt and devo.yaml (the devo_* settings of a connector) "
                    "for the TLS collector of a running sandbox.")
    parser.add_argument("directory", help="folder to write into (created if needed)")
    parser.add_argument("--url", default=default, help=f"URL of the Devo stand-in (default {default})")
    parser.add_argument("--domain", default=DEFAULT_DOMAIN,
                        help=f"Devo domain, the certificate CN (default {DEFAULT_DOMAIN})")
    parser.add_argument("--expired", action="store_true", help="write an expired certificate (to see the error)")
    args = parser.parse_args(argv)
    query = f"?domain={args.domain}" + ("&expired=1" if args.expired else "")
    try:
        url = args.url.rstrip("/") + "/_sandbox/devo/client-bundle" + query
        with urllib.request.urlopen(url, timeout=10) as answer:
            bundle = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"tq-conn-sandbox devo-certs: no Devo stand-in answers at {args.url} ({exc}); start tq-conn-sandbox "
              "first or give --url.", file=sys.stderr)
        return 2
    os.makedirs(args.directory, exist_ok=True)
    paths = {"cert": os.path.join(args.directory, f"{args.domain}.crt"),
             "key": os.path.join(args.directory, f"{args.domain}.key"),
             "chain": os.path.join(args.directory, "chain.crt")}
    settings = os.path.join(args.directory, "devo.yaml")
    texts = {paths["cert"]: bundle["cert"], paths["key"]: bundle["key"], paths["chain"]: bundle["chain"],
             settings: "".join(f"{k}: {v}\n" for k, v in (
                 ("devo_transport", "tls"), ("devo_host", bundle["host"]), ("devo_port", bundle["port"]),
                 ("devo_cert", os.path.abspath(paths["cert"])), ("devo_key", os.path.abspath(paths["key"])),
                 ("devo_chain", os.path.abspath(paths["chain"])), ("devo_tls_delay", 0)))}
    for path, text in texts.items():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(path)
    return 0


__all__ = ["certs_command"]
