"""tq_conn_sandbox: local stand-ins for the services the connectors talk to."""

__version__ = "1.1.0"

from tq_conn_sandbox.server import Request, Response, Service, route, start_services  # noqa: E402

__all__ = ["__version__", "Service", "Request", "Response", "route", "start_services"]
