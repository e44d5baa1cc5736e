"""A server the tests start in a child process on a free port of 127.0.0.1: started, waited for until
it answers, and stopped at the end (fakesnow, crucible-emulator, Spark's Thrift server).

``free_port()`` asks the kernel for a port nobody holds, then lets it go for the server to take: a
small race, which a server started on a taken port turns into its failure to start (it exits).
``stop()`` ends any child process of the tests: terminated, killed when it does not exit in time.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """The port takes a connection: what a server that answers as soon as it listens needs."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def serving(name: str, command: Sequence[str], port: int, *, ready: Callable[[int], bool] = listening,
            start_seconds: float = 60, poll_seconds: float = 0.1, stop_seconds: float = 10,
            log: Path | None = None, **popen: Any) -> Iterator[int]:
    """Run ``command`` (a server told to listen on ``port``) until ``ready(port)``; yield the port; stop it.

    Its output goes to ``log`` when one is given (its end is in the error when it does not start),
    nowhere otherwise. ``popen`` are more arguments of ``subprocess.Popen`` (cwd, env, ...). A
    server that exits or is not ready within ``start_seconds`` fails with RuntimeError naming it.
    """
    with ExitStack() as files:
        output: Any = files.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT, **popen)
        try:
            deadline = time.monotonic() + start_seconds
            while not ready(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = f":\n{log.read_text(errors='replace')[-3000:]}" if log is not None else ""
                    raise RuntimeError(f"{name} did not start on port {port} (exit {proc.poll()}){tail}")
                time.sleep(poll_seconds)
            yield port
        finally:
            stop(proc, stop_seconds)


def stop(proc: subprocess.Popen[Any], seconds: float) -> None:
    """Terminate a child process; kill it when it has not exited ``seconds`` later."""
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
