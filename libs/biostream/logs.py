"""structlog JSON logs that carry references, never personal data.

Two guards: events may only carry keys from an allow-list (anything else is dropped, with its key
name kept so the mistake is visible), and every string value is scanned for patterns that look like
resident registration numbers, phone numbers or e-mail addresses, which are masked.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

ALLOWED_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger", "service", "instance",
        "record_id", "patient_ref", "person_id", "decision_id", "event_id", "message_id",
        "hospital", "dataset", "topic", "partition", "offset", "offsets", "count", "records",
        "reason_code", "error_type", "elapsed_s", "state_keys", "bootstrap", "group", "port",
        "sequence", "outcome", "action", "contract", "pid", "attempt", "exc_info", "topics",
        "correlation_id", "correlation_ids", "stack", "duration_ms", "restored", "pending", "released",
        "partitions", "behind", "stalled_s", "limit_s",
        "key_id", "old_key_id", "new_key_id", "key_version", "tls",
    }
)  # fmt: skip

_RRN = re.compile(r"\d{6}-?[0-9]\d{6}")
_PHONE = re.compile(r"(?:\+82[- ]?|0)1[016789][- ]?\d{3,4}[- ]?\d{4}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def mask_identifiers(text: str) -> str:
    text = _RRN.sub("[RRN]", text)
    text = _PHONE.sub("[PHONE]", text)
    return _EMAIL.sub("[EMAIL]", text)


def _guard(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    dropped = [key for key in event_dict if key not in ALLOWED_KEYS]
    for key in dropped:
        del event_dict[key]
    if dropped:
        event_dict["dropped_keys"] = sorted(dropped)
    for key, value in event_dict.items():
        event_dict[key] = _mask_nested(value)
    return event_dict


def _mask_nested(value: Any) -> Any:
    if isinstance(value, str):
        return mask_identifiers(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask_nested(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _mask_nested(v) for k, v in value.items()}
    return value


def _safe_exception(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Render exceptions as type and stack frames only: their messages may quote input values."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is None or exc_info is False:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    exc_type, _value, tb = exc_info
    if exc_type is None:
        return event_dict
    event_dict["error_type"] = exc_type.__name__
    frames = traceback.extract_tb(tb)
    event_dict["stack"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames]
    return event_dict


def configure_logging(service: str, level: str = "INFO", instance: str = "0") -> None:
    """JSON lines on stderr for our events and for every library's stdlib logging alike, all
    through the same key allow-list and identifier masking."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _safe_exception,
                _guard,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka reports every refused connection and coordinator move at ERROR/WARNING; they are
    # retried internally, so they are kept at WARNING and above only.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service, instance=instance)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
