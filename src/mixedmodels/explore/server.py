"""The explorer's web server: a Flask app on 127.0.0.1 with one JSON endpoint and a static page.

Flask (the optional extra ``mixedmodels[explore]``) is imported only here,
when an app is made.  The fits are synchronous numerical work and the page has
one user, so a plain WSGI app on Werkzeug's threaded server is all it needs.

Endpoints
---------
``GET /``
    the page (``static/index.html``; script, styles and the vendored Chart.js
    under ``/static/``, nothing from the network).
``GET /api/simulate?J=16&nbar=8&sigma_u=1.5&sigma_e=2&seed=1``
    :func:`~mixedmodels.explore.core.shrinkage_demo` as JSON; a bad value gives
    HTTP 400 with ``{"error": message}``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MixedModelsError
from .core import parse_params, shrinkage_demo
from .._validate import check_arguments

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app", "start_server", "serve", "ExplorerServer", "STATIC_DIR"]

STATIC_DIR = Path(__file__).with_name("static")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _import_flask():
    try:
        import flask
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the shrinkage explorer needs Flask: pip install 'mixedmodels[explore]'") from error
    return flask


def _host_name(host_header: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``; ``[::1]:8765`` -> ``[::1]``."""
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0]


def create_app() -> "Flask":
    """The Flask app: the page, its static files and ``/api/simulate``.

    Requests whose ``Host`` is not a loopback name are refused (403), so a web
    page elsewhere cannot reach the server through DNS rebinding.
    """
    flask = _import_flask()
    app = flask.Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")

    @app.before_request
    def _only_local() -> Any:
        if _host_name(flask.request.host) not in _LOCAL_NAMES:
            return flask.jsonify(error="the explorer answers only on 127.0.0.1 / localhost"), 403
        return None

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers.update(_SECURITY_HEADERS)
        if flask.request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def _index() -> Any:
        return flask.send_from_directory(STATIC_DIR, "index.html")

    @app.get("/api/simulate")
    def _simulate() -> Any:
        try:
            params = parse_params(flask.request.args.to_dict())
        except MixedModelsError as error:
            return flask.jsonify(error=str(error)), 400
        try:
            return flask.jsonify(shrinkage_demo(params))
        except MixedModelsError as error:  # the fit itself failed: the settings are fine, the data are not
            return flask.jsonify(error=f"the model could not be fitted to these data: {error}"), 422

    @app.errorhandler(404)
    def _not_found(error: Any) -> Any:
        return flask.jsonify(error=f"no such page: {flask.request.path}"), 404

    return app


def _check_host(host: str) -> None:
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise MixedModelsError(f"the explorer listens only on this machine (127.0.0.1, ::1 or localhost), not {host!r}")


@dataclass
class ExplorerServer:
    """A running explorer: its address and a way to stop it."""

    host: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        """Answer requests in this thread until :meth:`shutdown` or Ctrl+C."""
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Stop answering and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


def _make_server(host: str, port: int) -> ExplorerServer:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class _QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # no line per request in the terminal
            pass

    _check_host(host)
    if not 0 <= int(port) <= 65535:
        raise MixedModelsError(f"port must be between 0 and 65535 (0 picks a free one), got {port}")
    app = create_app()
    try:
        _check_port_free(host, int(port))
        server = make_server(host, int(port), app, threaded=True, request_handler=_QuietHandler)
    except (OSError, SystemExit) as error:  # Werkzeug prints and exits on a bind error; the check above comes first
        reason = getattr(error, "strerror", None) or "address in use"
        raise MixedModelsError(f"cannot listen on {host}:{port} ({reason}); choose another port with --port") from None
    return ExplorerServer(host, server.server_port, server)


def _check_port_free(host: str, port: int) -> None:
    """Raise OSError if ``host:port`` cannot be bound (as the server will bind it, with SO_REUSEADDR)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def start_server(host: str = "127.0.0.1", port: int = 0) -> ExplorerServer:
    """Start the explorer in a background thread (port 0: a free port) and return it; for tests and notebooks.

    >>> server = start_server()          # doctest: +SKIP
    >>> server.url                       # doctest: +SKIP
    'http://127.0.0.1:54321/'
    >>> server.shutdown()                # doctest: +SKIP
    """
    check_arguments(locals())
    server = _make_server(host, port)
    server._thread = threading.Thread(target=server.serve_forever, name="mixedmodels-explore", daemon=True)
    server._thread.start()
    return server


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> None:
    """Run the explorer until Ctrl+C, printing its address (``mixedmodels explore``).

    Parameters
    ----------
    host : str
        A loopback address; the explorer never listens on the network.
    port : int
        TCP port; 0 picks a free one.
    open_browser : bool
        Open the page in the default web browser once the server listens.

    Raises
    ------
    MixedModelsError
        When the port is taken or the host is not a loopback address.
    ImportError
        When Flask is not installed (``pip install 'mixedmodels[explore]'``).
    """
    check_arguments(locals())
    server = _make_server(host, port)
    print(f"Shrinkage explorer running at {server.url}  (press Ctrl+C to stop)", flush=True)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.shutdown()
