"""The tq-conn-sandbox command: start the stand-ins on loopback, print their URLs, stop on Ctrl-C."""

import argparse
import logging
import signal
import sys
import threading

from tq_conn_sandbox.ports import BASE_PORT
from tq_conn_sandbox.server import start_services
from tq_conn_sandbox.services import available


def parse_ports(values, names):
    """Return {name: port} from NAME=PORT pairs; raise ValueError for a bad one."""
    ports = {}
    for item in values or ():
        name, _, port = item.partition("=")
        if name not in names or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"--port takes NAME=PORT with NAME one of {', '.join(names)} and PORT 0 to 65535, "
                             f"not {item!r}")
        ports[name] = int(port)
    return ports


def main(argv=None):
    """Start the stand-ins and wait for Ctrl-C (or run a helper subcommand such as devo-certs)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["devo-certs"]:
        from tq_conn_sandbox.devo_certs import certs_command
        return certs_command(argv[1:])
    services = available()
    parser = argparse.ArgumentParser(
        prog="tq-conn-sandbox",
        description="Local stand-ins for the services the tq-conn connectors talk to, on loopback ports.",
        epilog="Stand-ins: " + ", ".join(services) + ". Faults: POST /_sandbox/faults on any of them (see README). "
               "'tq-conn-sandbox devo-certs DIR' writes client certificates for the Devo TLS collector.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(services), help="start only these stand-ins")
    parser.add_argument("--port", action="append", metavar="NAME=PORT", help="fix a stand-in's port (repeatable)")
    parser.add_argument("--base-port", type=int, default=BASE_PORT,
                        help=f"ports are BASE+0, BASE+1, ... in name order (default {BASE_PORT}); 0 picks free ports")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    chosen = [services[name] for name in (args.only or services)]
    ports = {cls.name: (args.base_port + i if args.base_port else 0) for i, cls in enumerate(services.values())}
    try:
        ports.update(parse_ports(args.port, list(services)))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        running = start_services(chosen, args.host, ports)
    except OSError as exc:
        print(f"tq-conn-sandbox: cannot listen: {exc.strerror}; choose other ports with --base-port or --port.",
              file=sys.stderr)
        return 2
    for name, service in running.services.items():
        print(f"{name:<22} {service.url}")
        for label, value in getattr(service, "extra_urls", lambda: {})().items():
            print(f"{'':<22} {label}: {value}")
    print("Sandbox running. Ctrl-C stops.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    running.stop()
    print("Sandbox stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
