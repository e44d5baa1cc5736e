"""Run one emulator as a process: ``python -m dbt_activate.testing <vendor> --port N [knobs]``.

Prints the base URL on stdout once listening (so scripts can wait for it), then serves until
interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dbt_activate.testing.registry import EMULATORS, schema_kwargs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dbt_activate.testing", description=__doc__)
    parser.add_argument("vendor", choices=sorted(EMULATORS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--token", default=None,
                        help="the credential clients must send (default: the emulator's, 'test-token' for vendors)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--rate-limit", default=None, metavar="N/S",
                        help="N requests per rolling S seconds, or 'vendor' for the documented default")
    parser.add_argument("--daily-limit", type=int, default=None, help="requests (Pipedrive: tokens) per day")
    parser.add_argument("--fault-probability", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default="status_5xx", help="comma-separated: status_5xx,timeout,drop,...")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--schema", type=Path, default=None, metavar="FILE.json",
                        help="custom properties/fields/objects as JSON (see dbt_activate/testing/registry.py)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    knobs: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "latency": args.latency,
        "rate_limit": True if args.rate_limit == "vendor" else args.rate_limit,
        "daily_limit": args.daily_limit,
        "fault_probability": args.fault_probability,
        "fault_kinds": [k.strip() for k in args.fault_kinds.split(",") if k.strip()],
        "seed": args.seed,
    }
    if args.token is not None:
        knobs["token"] = args.token
    if args.schema is not None:
        knobs.update(schema_kwargs(args.vendor, json.loads(args.schema.read_text(encoding="utf-8"))))
    emulator = EMULATORS[args.vendor](**knobs)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with emulator:
        sys.stdout.write(f"{emulator.base_url}\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a user stops it
            done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
