"""A PostgreSQL wire-protocol proxy that lets the real Redshift driver talk to a local PostgreSQL.

Why: Redshift is a first-class warehouse for dbt-activate, but no test machine reaches a Redshift
cluster. We still want the real ``redshift_connector`` driver and the real ``dbt-redshift`` adapter
in the loop, because that is what users run. Redshift speaks the PostgreSQL 3.0 wire protocol and
the driver is a fork of pg8000, so queries, results, cursors and COPY already work against
PostgreSQL 15; what breaks is the connection handshake. This proxy repairs the handshake and then
gets out of the way.

Every rewrite it does (all of them during the handshake):

1. ``SSLRequest`` and ``GSSENCRequest`` are answered ``N`` by the proxy and never reach PostgreSQL.
   redshift_connector then fails with "Server refuses SSL" unless ``ssl=False`` (dbt profile:
   ``sslmode: disable``). That is deliberate: with TLS the driver verifies the server against the
   Redshift CA bundle it ships, which no local certificate can satisfy. (libpq clients with the
   default ``sslmode=prefer`` fall back to plain TCP and work unchanged.)
2. StartupMessage: the keys only Redshift understands (``REDSHIFT_ONLY_PARAMETERS``; the driver
   always sends ``client_protocol_version``, ``driver_version``, ``os_version`` and
   ``driver_discovery_version``, its IdP plugins add more) are removed; ``user``, ``database``,
   ``application_name`` and everything else pass. PostgreSQL treats an unknown startup key as a
   setting and refuses the session: ``FATAL: unrecognized configuration parameter
   "client_protocol_version"``. As PostgreSQL then never answers ``server_protocol_version``, the
   driver falls back to the base (text) protocol, as it does against older Redshift clusters.
3. ParameterStatus ``server_version``: PostgreSQL reports e.g. ``15.20 (Debian 15.20-0+deb12u1)``,
   which the driver's ``packaging.version.parse`` rejects (``InvalidVersion``). It becomes ``8.0.2``,
   what Redshift reports, so the driver takes its Redshift code paths (e.g. the row count of a
   SELECT or FETCH is taken from the rows received, not from the CommandComplete tag).
4. CancelRequest is relayed unchanged (backend key data passes through, so cancels still work).

After the first ReadyForQuery (or ErrorResponse) from PostgreSQL, both directions are a plain byte
pump (TCP_NODELAY on both legs): nothing else is parsed or rewritten. SQL differences (Redshift
system views, ``pg_get_late_binding_view_cols()``, ``getdate()``) are handled by compatibility
objects in the test database, see ``tests/support/redshift.py``; what neither can fix is listed
there. In-process, the relay threads share the GIL with the code under test: measured, that costs
nothing noticeable (a 500,000-row stream is about 10% slower than direct, in-process or not), but
libpq's cancel (psycopg2 ``conn.cancel()``) holds the GIL while it waits for the proxy and
deadlocks; for that, run ``python -m tests.support.redshift_proxy`` in a process of its own.

Usage::

    with RedshiftProxy(upstream=("127.0.0.1", 5432)) as proxy:
        redshift_connector.connect(host=proxy.host, port=proxy.port, ssl=False, ...)
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3_0 = 196608

#: Startup keys sent by redshift_connector (core.py ``init_params`` and its IdP plugins) that
#: PostgreSQL would reject as unknown settings.
REDSHIFT_ONLY_PARAMETERS = frozenset(
    {
        "client_protocol_version",
        "driver_version",
        "os_version",
        "driver_discovery_version",
        "plugin_name",
        "idp_type",
        "provider_name",
        "identity_namespace",
        "token_type",
        "idc_client_display_name",
    }
)

#: What a Redshift cluster reports as ``server_version``.
REDSHIFT_SERVER_VERSION = "8.0.2"

_CHUNK = 256 * 1024
_HEADER = struct.Struct("!cI")  # type byte, length including itself
_INT32 = struct.Struct("!I")


class ProxyProtocolError(Exception):
    """The client or the server sent something the proxy does not understand."""


@dataclass(frozen=True)
class ProxyStats:
    """What the proxy did so far, for tests that assert the rewrites really happened."""

    connections: int
    refused_ssl_requests: int
    stripped_parameters: frozenset[str]
    server_version_rewrites: int
    upstream_server_version: str | None
    cancel_requests: int


class RedshiftProxy:
    """Listen on an ephemeral 127.0.0.1 port and relay each client to ``upstream`` with the rewrites
    listed in the module docstring. One thread accepts; each connection uses two daemon threads."""

    def __init__(
        self,
        upstream: tuple[str, int] = ("127.0.0.1", 5432),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: str = REDSHIFT_SERVER_VERSION,
    ) -> None:
        self.upstream = upstream
        self.server_version = server_version
        self._bind = (host, port)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._connections = 0
        self._refused_ssl = 0
        self._stripped: set[str] = set()
        self._version_rewrites = 0
        self._upstream_version: str | None = None
        self._cancels = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RedshiftProxy:
        """Bind and start accepting; a no-op when already started (``with start_proxy() as p``)."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._bind)
        listener.listen(64)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="redshift-proxy", daemon=True)
        self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and cut every relayed connection (clients then see a closed socket)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._listener is not None:
            _shutdown(self._listener)
            self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _shutdown(sock)
        for thread in [*threads, *([self._accept_thread] if self._accept_thread else [])]:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> RedshiftProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def host(self) -> str:
        return self._address()[0]

    @property
    def port(self) -> int:
        return self._address()[1]

    def _address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("RedshiftProxy is not started; use it as a context manager or call start()")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(
                connections=self._connections,
                refused_ssl_requests=self._refused_ssl,
                stripped_parameters=frozenset(self._stripped),
                server_version_rewrites=self._version_rewrites,
                upstream_server_version=self._upstream_version,
                cancel_requests=self._cancels,
            )

    # -- connections -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener shut down by close()
            self._spawn(self._serve, client, name="redshift-proxy-conn")

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def _track(self, sock: socket.socket) -> None:
        # Without TCP_NODELAY, Nagle's algorithm holds back the tail of every relayed chunk until
        # the peer's delayed ACK (about 40 ms): measured, it tripled the time of a streaming read.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)

    def _forget(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._sockets.discard(sock)
            _shutdown(sock)  # wakes a thread blocked in recv(); close() alone does not
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        with self._lock:
            self._connections += 1
        try:
            relayed = self._handshake(client)
        except (OSError, ProxyProtocolError):
            relayed = None
        if relayed is None:
            self._forget(client)
            return
        server, upstream_pump = relayed
        # Handshake done: from here on neither direction is parsed.
        _pump(server, client)
        upstream_pump.join(timeout=5)
        self._forget(client, server)

    def _handshake(self, client: socket.socket) -> tuple[socket.socket, threading.Thread] | None:
        """Negotiate with the client, open the upstream connection and relay the startup phase.
        Returns the upstream socket and the client -> server pump once the session is ready, or
        None when there is no session to relay (cancel request, refused session)."""
        while True:
            body = _read_untyped(client)
            (code,) = _INT32.unpack_from(body)
            if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
                with self._lock:
                    self._refused_ssl += 1
                client.sendall(b"N")
                continue
            break
        if code >> 16 != PROTOCOL_3_0 >> 16 and code != CANCEL_REQUEST_CODE:  # any 3.x: PostgreSQL negotiates
            client.sendall(_error_response(f"redshift proxy: unsupported protocol code {code}"))
            return None
        server = socket.create_connection(self.upstream)
        self._track(server)
        if code == CANCEL_REQUEST_CODE:
            with self._lock:
                self._cancels += 1
            server.sendall(_INT32.pack(len(body) + 4) + body)
            self._forget(server)
            return None
        server.sendall(self._rewrite_startup(body))
        # The client may have to answer authentication requests (md5, SCRAM): relay raw bytes
        # client -> server already, while the server -> client direction is parsed until ready.
        upstream_pump = self._spawn(_pump, client, server, name="redshift-proxy-c2s")
        try:
            while True:
                kind, payload = _read_typed(server)
                if kind == b"S":
                    payload = self._rewrite_parameter_status(payload)
                client.sendall(_HEADER.pack(kind, len(payload) + 4) + payload)
                if kind == b"E":
                    raise ProxyProtocolError("upstream refused the session")
                if kind == b"Z":
                    return server, upstream_pump
        except BaseException:
            self._forget(server)
            raise

    def _rewrite_startup(self, body: bytes) -> bytes:
        kept: list[bytes] = []
        for key, value in _startup_parameters(body):
            name = key.decode("ascii", "replace")
            if name in REDSHIFT_ONLY_PARAMETERS:
                with self._lock:
                    self._stripped.add(name)
                continue
            kept += [key, value]
        rewritten = body[:4] + b"".join(part + b"\x00" for part in kept) + b"\x00"
        return _INT32.pack(len(rewritten) + 4) + rewritten

    def _rewrite_parameter_status(self, payload: bytes) -> bytes:
        name, _, rest = payload.partition(b"\x00")
        if name != b"server_version":
            return payload
        with self._lock:
            self._version_rewrites += 1
            self._upstream_version = rest.rstrip(b"\x00").decode("utf-8", "replace")
        return name + b"\x00" + self.server_version.encode("ascii") + b"\x00"


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then half-close ``sink`` so the peer sees the end too."""
    try:
        while chunk := source.recv(_CHUNK):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _shutdown(sink)
        _shutdown(source)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(size - len(buffer))
        if not chunk:
            raise ProxyProtocolError("connection closed during the handshake")
        buffer += chunk
    return bytes(buffer)


def _read_untyped(sock: socket.socket) -> bytes:
    """Read a startup-phase message (no type byte); returns the body after the length."""
    (length,) = _INT32.unpack(_read_exact(sock, 4))
    if not 8 <= length <= 10_000:
        raise ProxyProtocolError(f"implausible startup message length {length}")
    return _read_exact(sock, length - 4)


def _read_typed(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = _HEADER.unpack(_read_exact(sock, _HEADER.size))
    return kind, _read_exact(sock, length - 4)


def _startup_parameters(body: bytes) -> list[tuple[bytes, bytes]]:
    """Body of a StartupMessage: Int32 protocol, then NUL-terminated key, value, key, value, ...
    and one final NUL. Values may be empty, so split exactly, never strip."""
    params = body[4:]
    fields = params[:-1].split(b"\x00")[:-1]
    if not params.endswith(b"\x00") or len(fields) % 2:
        raise ProxyProtocolError("malformed startup message")
    return list(zip(fields[0::2], fields[1::2], strict=True))


def _error_response(message: str) -> bytes:
    fields = b"SFATAL\x00C08P01\x00M" + message.encode("utf-8") + b"\x00\x00"
    return _HEADER.pack(b"E", len(fields) + 4) + fields


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.redshift_proxy [--port N] [--upstream HOST:PORT]``: serve in a
    process of its own until interrupted, printing the port first. For libpq cancel requests
    (see the module docstring) and for benchmarks that must not share the GIL with the proxy."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default="127.0.0.1:5432", help="PostgreSQL HOST:PORT")
    args = parser.parse_args(argv)
    upstream_host, _, upstream_port = str(args.upstream).rpartition(":")
    with RedshiftProxy(upstream=(upstream_host, int(upstream_port)), host=args.host, port=args.port) as proxy:
        print(proxy.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
