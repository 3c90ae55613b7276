"""The local broker: the command line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from biostream_dev.broker.common import (
    DEFAULT_HEAP_MB,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    BrokerError,
    BrokerInfo,
)
from biostream_dev.broker.jars import ensure_jars
from biostream_dev.broker.lifecycle import (
    kill_broker,
    pause_broker,
    restart_broker,
    resume_broker,
    start_broker,
    stop_broker,
)
from biostream_dev.broker.processes import rss_bytes
from biostream_dev.broker.record import broker_status


def _info_json(info: BrokerInfo) -> str:
    data = asdict(info)
    data["run_dir"] = str(info.run_dir)
    data["log_path"] = str(info.log_path)
    data["rss_bytes"] = rss_bytes(info.pid)
    return json.dumps(data, indent=2)


def parse_properties(items: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BrokerError(f"--property wants KEY=VALUE, got {item!r}")
        properties[key.strip()] = value.strip()
    return properties


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m biostream_dev.broker",
        description="Single-node Kafka (KRaft) broker on loopback from Maven Central jars.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker jars (once) and print their directory")
    start = commands.add_parser("start", help="start (or find) the broker; prints its bootstrap")
    start.add_argument("--dir", type=Path, required=True, help="run directory")
    start.add_argument("--port", type=int, default=None, help="client port (default: free port)")
    start.add_argument("--heap-mb", type=int, default=DEFAULT_HEAP_MB)
    start.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT)
    start.add_argument(
        "--property",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="extra server.properties entry (repeat), e.g. log.retention.ms=60000; "
        "kept for restarts of this run directory",
    )
    start.add_argument(
        "--auth",
        action="store_true",
        help="SASL/SCRAM and ACLs, as the tests' broker (admin password in DIR/admin.password); "
        "over TLS with a CA generated in DIR/tls unless --no-tls",
    )
    start.add_argument(
        "--no-tls",
        action="store_true",
        help="with --auth: SASL_PLAINTEXT instead of SASL_SSL (development only)",
    )
    start.add_argument(
        "--client-certificates",
        action="store_true",
        help="with --auth and TLS: a second listener authenticating clients by certificate",
    )
    stop = commands.add_parser("stop", help="graceful stop (SIGTERM, then SIGKILL)")
    stop.add_argument("--dir", type=Path, required=True)
    stop.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT)
    status = commands.add_parser("status", help="print the broker record; exit 1 if not running")
    status.add_argument("--dir", type=Path, required=True)
    kill = commands.add_parser("kill", help="SIGKILL the broker (fault tests)")
    kill.add_argument("--dir", type=Path, required=True)
    restart = commands.add_parser("restart", help="restart on the same ports and data")
    restart.add_argument("--dir", type=Path, required=True)
    restart.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT)
    pause = commands.add_parser("pause", help="SIGSTOP the broker (fault tests; resume after)")
    pause.add_argument("--dir", type=Path, required=True)
    resume = commands.add_parser("resume", help="SIGCONT a paused broker")
    resume.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(ensure_jars())
        elif args.command == "start":
            extra = None if args.property is None else parse_properties(args.property)
            info = start_broker(
                args.dir,
                args.port,
                args.heap_mb,
                timeout=args.timeout,
                extra_properties=extra,
                authentication=args.auth,
                tls=not args.no_tls,
                client_certificates=args.client_certificates,
            )
            print(info.bootstrap)
        elif args.command == "stop":
            stop_broker(args.dir, args.timeout)
        elif args.command == "status":
            found = broker_status(args.dir)
            if found is None:
                print("not running")
                return 1
            print(_info_json(found))
        elif args.command == "kill":
            kill_broker(args.dir)
        elif args.command == "restart":
            print(restart_broker(args.dir, args.timeout).bootstrap)
        elif args.command == "pause":
            pause_broker(args.dir)
        elif args.command == "resume":
            resume_broker(args.dir)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
