"""What ``linkage evaluate`` and ``linkage train`` do: files through the service's engine
(``linkage.evaluate``), the summary or the parameters written out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
import zlib
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from biostream.contracts import LinkageParamsVersion, OffsetRange, ShadowReport

    from linkage.adapters.params_topic import ParamsWriter, RetainedRecord
    from linkage.domain.params_versions import VersionState
    from linkage.domain.weights import Params
    from linkage.handlers import LinkInput
    from linkage.settings import LinkageSettings

T = TypeVar("T")

# Person ids of an evaluation run are keyed hashes; a fixed default key keeps reruns comparable.
_EVALUATE_KEY = b"biostream-linkage-evaluate"


def _key() -> bytes:
    value = os.environ.get("BIOSTREAM_PERSON_KEY")
    return value.encode() if value else _EVALUATE_KEY


def evaluate(
    input_path: Path, output: Path, truth: Path | None, params: Path | None, *, trained: bool
) -> None:
    """The records linked in file order (assignments to ``output``); a JSON summary printed,
    scored against ``truth`` when given."""
    from linkage.domain.weights import Params
    from linkage.evaluate import evaluate_file

    loaded = Params.from_json(params.read_text(encoding="utf-8")) if params else None
    result = evaluate_file(input_path, output, _key(), truth, loaded, trained=trained)
    rate = len(result.order) / result.seconds if result.seconds > 0 else 0.0
    summary: dict[str, object] = {
        "records": len(result.order),
        "persons": len(set(result.assignments.values())),
        "outcomes": result.outcomes,
        "records_per_second": round(rate, 1),
    }
    if result.scores is not None:
        summary["scores"] = result.scores.as_dict()
    typer.echo(json.dumps(summary, indent=1))


def train(input_path: Path, output: Path) -> None:
    """m/u parameters estimated without labels on a sample, written to ``output`` (D-linkage-1)."""
    from linkage.adapters.jsonl import read_records
    from linkage.domain.profile import make_profile
    from linkage.evaluate import train as estimate

    profiles = [make_profile(identity, _key()) for identity, _ in read_records(input_path)]
    output.write_text(estimate(profiles).to_json(), encoding="utf-8")
    typer.echo(f"{len(profiles)} records; parameters written to {output}")


# ----------------------------------------------------------------- parameter versions (D41)

_TRAINER_ROLE = "linkage-trainer"
_STEWARD_ROLE = "steward"


def train_from_topic(
    max_records: int | None,
    match_threshold: float | None,
    review_threshold: float | None,
    shadow: bool,
) -> None:
    """``linkage train --from-topic``: a new PROPOSED version on linkage.params (D41), with
    ``--shadow`` shadowed at once."""
    from linkage.settings import LinkageSettings

    settings = LinkageSettings()
    _print(
        _run(
            propose_from_topic(
                settings, max_records, match_threshold, review_threshold, shadow=shadow
            ),
            settings,
        )
    )


def shadow(version: int) -> None:
    """``linkage shadow --version N``: the shadow report, published with the version (D41)."""
    from linkage.settings import LinkageSettings

    settings = LinkageSettings()
    _print(_run(shadow_version(settings, version), settings))


def params_list() -> None:
    """``linkage params list``: every version's newest state, one JSON line each."""
    from linkage.settings import LinkageSettings

    settings = LinkageSettings()
    for line in _run(list_versions(settings), settings):
        typer.echo(json.dumps(line, ensure_ascii=False))


def params_activate(version: int) -> None:
    """``linkage params activate N``: a steward switches a shadowed version on (D41)."""
    from linkage.settings import LinkageSettings

    settings = LinkageSettings()
    _print(_run(activate_version(settings, version), settings))


class Refused(Exception):
    """A parameter command refused before writing anything (exit 2), naming why."""


def _print(summary: dict[str, object]) -> None:
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=1))


def _run(command: Coroutine[Any, Any, T], settings: LinkageSettings) -> T:
    from biostream.logs import configure_logging
    from biostream.restore import ReadStalled

    configure_logging("linkage", settings.log_level, settings.instance_id)
    try:
        return asyncio.run(command)
    except Refused as refusal:
        typer.echo(f"refused: {refusal}", err=True)
        raise typer.Exit(2) from None
    except ReadStalled as stall:
        typer.echo(f"error: could not read the topics to their end: {stall}", err=True)
        raise typer.Exit(3) from None


def _job_principal(settings: LinkageSettings) -> str:
    """The principal the job's Kafka credentials authenticate, else BIOSTREAM_PRINCIPAL, else
    the matrix's trainer role (the job writes no audit events of its own: the version record
    names who proposed and shadowed it)."""
    authenticated = settings.kafka.authenticated_principal()
    return authenticated or settings.principal or f"User:{settings.topic_prefix}{_TRAINER_ROLE}"


def _fallback_params(settings: LinkageSettings) -> Params:
    from linkage.domain.weights import Params, default_params

    if settings.params_file:
        return Params.from_json(settings.params_file.read_text(encoding="utf-8"))
    return default_params()


def _params_of(record: LinkageParamsVersion) -> Params:
    from linkage.domain.weights import Params

    return Params.from_json(zlib.decompress(record["params_json_zlib"]).decode())


def _states(
    records: list[LinkageParamsVersion],
) -> tuple[dict[int, LinkageParamsVersion], list[VersionState]]:
    from linkage.domain.params_versions import VersionState, newest_by_version

    newest: dict[int, LinkageParamsVersion] = newest_by_version(records)  # type: ignore[assignment]
    return newest, [
        VersionState(
            v["version"], v["state"],
            v["shadow"]["baseline_version"] if v["shadow"] else None, v["shadow"] is not None,
        )
        for v in newest.values()
    ]  # fmt: skip


async def _retained_inputs(
    settings: LinkageSettings, writer: ParamsWriter, client: str
) -> tuple[list[LinkInput], list[tuple[int, int, str]], list[RetainedRecord[LinkInput]], int]:
    """The retained identity records as the handler links them (``handlers.link_input``), each
    made into its profile as it is read; a record linkage would reject (unreadable, or its
    registration number does not open, D33) is left out and counted, as the service leaves it
    out of the index. Returns the inputs, their (partition, offset, record id), the retained
    records they came from, and the count left out."""
    from biostream.keyfiles import load_key_ring
    from biostream.keyring import PERSON_KEY, RRN_KEY
    from biostream.sealing import SealError, SealingKeys

    from linkage.adapters.params_topic import read_identity_records
    from linkage.handlers import link_input

    person_keys = load_key_ring(
        PERSON_KEY, settings.person_keys_dir, settings.person_key, settings.person_key_file
    )
    sealer = SealingKeys(
        load_key_ring(RRN_KEY, settings.rrn_keys_dir, settings.rrn_key, settings.rrn_key_file)
    )

    def convert(record: dict[str, Any] | None, timestamp_ms: int) -> LinkInput | None:
        if record is None:
            return None
        try:
            return link_input(record, timestamp_ms, person_keys, sealer)
        except SealError:
            return None

    retained = await read_identity_records(
        settings.kafka, writer.codec, writer.topics, client, settings.read_timeout_s, convert
    )
    used = [item for item in retained if item.value is not None]
    inputs = [item.value for item in used if item.value is not None]
    positions = [
        (item.partition, item.offset, value.meta[0])
        for item, value in zip(used, inputs, strict=True)
    ]
    return inputs, positions, used, len(retained) - len(used)


def _offsets(used: list[RetainedRecord[LinkInput]]) -> list[OffsetRange]:
    ranges: dict[int, list[int]] = {}
    for item in used:
        span = ranges.setdefault(item.partition, [item.offset, item.offset])
        span[0], span[1] = min(span[0], item.offset), max(span[1], item.offset)
    return [{"partition": p, "first": a, "last": b} for p, (a, b) in sorted(ranges.items())]


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def _writer(settings: LinkageSettings) -> ParamsWriter:
    from biostream.codec import default_codec
    from biostream.topics import Topics

    from linkage.adapters.params_topic import ParamsWriter

    writer = ParamsWriter(settings.kafka, default_codec(), Topics(settings.topic_prefix))
    await writer.start()
    return writer


async def _versions(
    settings: LinkageSettings, writer: ParamsWriter, client: str
) -> list[LinkageParamsVersion]:
    from linkage.adapters.params_topic import read_versions

    return await read_versions(
        settings.kafka, writer.codec, writer.topics, client, settings.read_timeout_s
    )


async def propose_from_topic(
    settings: LinkageSettings,
    max_records: int | None = None,
    match_threshold: float | None = None,
    review_threshold: float | None = None,
    *,
    shadow: bool = False,
) -> dict[str, object]:
    """D41: parameters estimated on the retained identity records (the newest ``max_records``
    of them if given), published as the next PROPOSED version; thresholds those of the active
    version unless given. With ``shadow`` the same read records are replayed at once (all of
    them) and the version published SHADOWED with its report: one read of the topic."""
    import dataclasses

    from linkage.domain.params_versions import (
        active_version,
        next_version,
        params_digest,
        sample_digest,
    )
    from linkage.domain.training import estimate
    from linkage.domain.weights import Thresholds

    client = f"{settings.topic_prefix}linkage-train"
    writer = await _writer(settings)
    try:
        started = time.perf_counter()
        every_input, every_position, every_used, skipped = await _retained_inputs(
            settings, writer, client
        )
        # The newest only, if asked: parameters follow today's data.
        cut = -max_records if max_records else 0
        inputs, positions, used = every_input[cut:], every_position[cut:], every_used[cut:]
        newest, states = _states(await _versions(settings, writer, client))
        active = active_version(states)
        # Started from the same base as `linkage train` (the parameter file or the defaults),
        # with the thresholds a steward set on the active version kept.
        base = _fallback_params(settings)
        if active is not None:
            base = dataclasses.replace(base, thresholds=_params_of(newest[active]).thresholds)
        params = estimate([i.profile for i in inputs], base)
        if match_threshold is not None or review_threshold is not None:
            thresholds = Thresholds(
                params.thresholds.match if match_threshold is None else match_threshold,
                params.thresholds.review if review_threshold is None else review_threshold,
            )
            params = dataclasses.replace(params, thresholds=thresholds)
        text = params.to_json()
        number = next_version(states)
        record: LinkageParamsVersion = {
            "version": number,
            "state": "PROPOSED",
            "params_json_zlib": zlib.compress(text.encode(), 9),
            "params_sha256": params_digest(text),
            "trained_on": {
                "topic": writer.topics.identity_records,
                "records": len(inputs),
                "skipped": skipped,
                "offsets": _offsets(used),
                "first_record_at": _at(min(u.timestamp_ms for u in used)) if used else None,
                "last_record_at": _at(max(u.timestamp_ms for u in used)) if used else None,
                "sample_sha256": sample_digest(positions),
            },
            "proposed_by": _job_principal(settings),
            "proposed_at": _now(),
            "shadow": None,
            "activated_by": None,
            "activated_at": None,
            "retired_at": None,
        }
        await writer.write([record])
        summary: dict[str, object] = {
            "version": number, "state": "PROPOSED", "records": len(inputs), "skipped": skipped,
            "params_bytes": len(text), "seconds": round(time.perf_counter() - started, 2),
        }  # fmt: skip
        if shadow:
            baseline = (
                _params_of(newest[active]) if active is not None else _fallback_params(settings)
            )
            report = _shadow_report(settings, active, baseline, params, every_input, every_used)
            await writer.write([{**record, "state": "SHADOWED", "shadow": report}])
            summary["shadow"] = _report_summary(number, report)
    finally:
        await writer.stop()
    return summary


async def shadow_version(settings: LinkageSettings, version: int) -> dict[str, object]:
    """D41: the retained identity records replayed under the active version (or the fallback)
    and under ``version``; the report published with it (SHADOWED) and returned."""
    from linkage.domain.params_versions import active_version, shadow_refusal

    client = f"{settings.topic_prefix}linkage-shadow"
    writer = await _writer(settings)
    try:
        newest, states = _states(await _versions(settings, writer, client))
        refusal = shadow_refusal(states, version)
        if refusal:
            raise Refused(refusal)
        active = active_version(states)
        baseline = _params_of(newest[active]) if active is not None else _fallback_params(settings)
        candidate = _params_of(newest[version])
        inputs, _positions, used, _skipped = await _retained_inputs(settings, writer, client)
        report = _shadow_report(settings, active, baseline, candidate, inputs, used)
        shadowed: LinkageParamsVersion = {**newest[version], "state": "SHADOWED", "shadow": report}
        await writer.write([shadowed])
    finally:
        await writer.stop()
    return _report_summary(version, report)


def _shadow_report(
    settings: LinkageSettings,
    baseline_version: int | None,
    baseline: Params,
    candidate: Params,
    inputs: list[LinkInput],
    used: list[RetainedRecord[LinkInput]],
) -> ShadowReport:
    """D41: the records replayed under both parameter sets, in topic order, and the counts."""
    from linkage.domain.shadow import ReplayRecord, replay, shadow_diff

    records = [ReplayRecord(i.ref, i.profile, i.meta, i.previous) for i in inputs]
    started = time.perf_counter()
    diff = shadow_diff(replay(records, baseline), replay(records, candidate))
    return {
        "baseline_version": baseline_version,
        "records": diff.records,
        "patients": diff.patients,
        "offsets": _offsets(used),
        "persons_before": diff.persons_before,
        "persons_after": diff.persons_after,
        "patients_regrouped": diff.patients_regrouped,
        "pairs_linked": diff.pairs_linked,
        "pairs_unlinked": diff.pairs_unlinked,
        "outcomes_changed": diff.outcomes_changed,
        "outcomes_before": diff.outcomes_before,
        "outcomes_after": diff.outcomes_after,
        "transitions": diff.transitions,
        "seconds": round(time.perf_counter() - started, 3),
        "shadowed_by": _job_principal(settings),
        "shadowed_at": _now(),
    }


def _report_summary(version: int, report: ShadowReport) -> dict[str, object]:
    """What the commands print of a report: the counts (offsets and time are on the topic)."""
    return {
        "version": version,
        "state": "SHADOWED",
        **{k: v for k, v in report.items() if k not in ("offsets", "shadowed_at")},
    }


async def list_versions(settings: LinkageSettings) -> list[dict[str, object]]:
    """Every version's newest state, lowest number first (counts and codes only)."""
    from biostream.codec import default_codec
    from biostream.topics import Topics

    from linkage.adapters.params_topic import read_versions

    records = await read_versions(
        settings.kafka, default_codec(), Topics(settings.topic_prefix),
        f"{settings.topic_prefix}linkage-params-list", settings.read_timeout_s,
    )  # fmt: skip
    newest = _states(records)[0]
    return [_summary(newest[n]) for n in sorted(newest)]


def _summary(v: LinkageParamsVersion) -> dict[str, object]:
    shadow_report = v["shadow"]
    return {
        "version": v["version"],
        "state": v["state"],
        "params_sha256": v["params_sha256"],
        "trained_on_records": v["trained_on"]["records"],
        "proposed_by": v["proposed_by"],
        "proposed_at": v["proposed_at"].isoformat(),
        "activated_by": v["activated_by"],
        "shadow": None
        if shadow_report is None
        else {k: val for k, val in shadow_report.items() if k not in ("offsets", "shadowed_at")},
    }


async def activate_version(settings: LinkageSettings, version: int) -> dict[str, object]:
    """D41: ``version`` ACTIVE and the active one RETIRED, with the steward's audit event, in
    one transaction; ``Refused`` (nothing written) when ``activation_refusal`` says so."""
    from biostream.envelopes import Envelopes
    from biostream.kit import tool_principal

    from linkage.domain.params_versions import activation_refusal, active_version

    steward = tool_principal(settings, _STEWARD_ROLE)
    writer = await _writer(settings)
    try:
        newest, states = _states(
            await _versions(settings, writer, f"{settings.topic_prefix}linkage-params-activate")
        )
        refusal = activation_refusal(states, version)
        if refusal:
            raise Refused(refusal)
        current = active_version(states)
        now = _now()
        # The version active now is retired in the same transaction: at most one is ACTIVE.
        records: list[LinkageParamsVersion] = []
        if current is not None:
            records.append({**newest[current], "state": "RETIRED", "retired_at": now})
        records.append(
            {**newest[version], "state": "ACTIVE", "activated_by": steward, "activated_at": now}
        )
        envelopes = Envelopes("linkage", steward, writer.codec, writer.topics)
        audit = envelopes.audit(
            "linkage.params-activated", [f"{writer.topics.linkage_params}/{version}"], [], now,
            outcome="activated",
        )  # fmt: skip
        await writer.write(records, [audit])
    finally:
        await writer.stop()
    return {"version": version, "state": "ACTIVE", "retired": current, "activated_by": steward}
