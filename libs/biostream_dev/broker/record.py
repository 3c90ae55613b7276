"""The local broker: broker.json, the record of the last start."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biostream_dev.broker.common import LOG_FILE, RECORD_FILE, BrokerInfo
from biostream_dev.broker.processes import is_our_broker


def read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    tmp = run_dir / f".{RECORD_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(run_dir / RECORD_FILE)


def info_from_record(run_dir: Path, record: Mapping[str, Any]) -> BrokerInfo:
    return BrokerInfo(
        bootstrap=str(record["bootstrap"]),
        pid=int(record["pid"]),
        run_dir=run_dir,
        log_path=run_dir / LOG_FILE,
        port=int(record["port"]),
        controller_port=int(record["controller_port"]),
        cluster_id=str(record["cluster_id"]),
        kafka_version=str(record["kafka_version"]),
        heap_mb=int(record["heap_mb"]),
        cert_bootstrap=f"127.0.0.1:{record['cert_port']}" if record.get("cert_port") else None,
    )


def broker_status(run_dir: Path) -> BrokerInfo | None:
    """The broker of ``run_dir`` if its recorded process is alive, else None.

    Only checks the process (cheap); use :func:`wait_until_ready` to know that it serves.
    """
    run_dir = run_dir.resolve()
    record = read_record(run_dir)
    if record is None or not is_our_broker(int(record.get("pid", 0)), run_dir):
        return None
    return info_from_record(run_dir, record)
