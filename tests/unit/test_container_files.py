"""The Dockerfile and docker-compose.yml read as Docker would (no engine runs here): the image
holds every package the project installs, every writable named volume is writable by the user
that writes it, and Kafka's data lands on its volume."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE_USER = "10001"


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per build stage, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def copied_sources(stage: list[tuple[str, str]]) -> list[str]:
    sources: list[str] = []
    for instruction, arguments in stage:
        if instruction == "COPY" and not arguments.startswith("--from"):
            sources += arguments.split()[:-1]
    return sources


def test_the_build_stage_copies_every_package_directory_before_installing() -> None:
    build = dockerfile_stages()[0]
    sources = copied_sources(build)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_roots = project["tool"]["setuptools"]["packages"]["find"]["where"]
    top_dirs = {root.split("/")[0] for root in package_roots}
    missing = sorted(d for d in top_dirs if d not in sources)
    assert not missing, f"the image is built without {missing}"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def test_the_package_builds_from_exactly_what_the_dockerfile_copies(tmp_path: Path) -> None:
    """The build stage's `pip install .`, from a folder holding only the copied files."""
    context = tmp_path / "context"
    context.mkdir()
    for source in copied_sources(dockerfile_stages()[0]):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, context / source)
    # The package metadata setuptools writes for `pip install .` names the top-level packages.
    egg_base = tmp_path / "egg"
    egg_base.mkdir()
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "egg_info",
         "--egg-base", str(egg_base)],
        cwd=context, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    [top_level] = egg_base.glob("*.egg-info/top_level.txt")
    names = set(top_level.read_text().split())
    for package in ("biostream", "ingest", "linkage", "pseudonymizer", "audit", "review",
                    "biostream_consumer", "biostream_dev", "biostream_harness"):  # fmt: skip
        assert package in names, f"the image would lack {package}"


def test_every_writable_named_volume_is_owned_by_the_user_that_writes_it() -> None:
    """A new named volume takes the owner of the image's directory at its mount point (root when
    the image has none), so a non-root writer needs that directory made and chowned in the image."""
    final = dockerfile_stages()[-1]
    runs = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    spec = compose()
    named = set(spec.get("volumes", {}))
    checked = 0
    for name, service in spec["services"].items():
        if service.get("image") != "biostream:dev" and "build" not in service:
            continue  # third-party images: their own defaults (Kafka below)
        user = str(service.get("user", IMAGE_USER))
        if user == "0":
            continue  # one-shot set-up jobs run as root and hand each file to its reader
        for mount in service.get("volumes", []):
            volume, _, rest = str(mount).partition(":")
            target, _, mode = rest.partition(":")
            if volume not in named or mode == "ro":
                continue
            assert re.search(rf"mkdir -p [^&]*{re.escape(target)}", runs), (
                f"{name}: the image has no {target} for volume {volume}"
            )
            assert re.search(rf"chown {user}(:\d+)? {re.escape(target)}", runs), (
                f"{name} writes {target} as uid {user}, but the image's directory is not theirs"
            )
            checked += 1
    assert checked >= 1  # the key generator's volume at least


def test_kafka_keeps_its_data_on_its_volume() -> None:
    kafka = compose()["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = {str(m).split(":")[1]: str(m).split(":")[0] for m in kafka["volumes"]}
    assert log_dirs in mounts, (
        f"log.dirs {log_dirs} is not on a volume: topics die with the container"
    )


def _kafka_properties() -> dict[str, str]:
    """The broker's properties as the apache/kafka image derives them from KAFKA_* variables
    (``_`` is ``.``, ``__`` is ``_``, ``___`` is ``-``); ``$$`` is compose's escaped ``$``."""
    environment = compose()["services"]["kafka"]["environment"]
    properties = {}
    for name, value in environment.items():
        if not name.startswith("KAFKA_"):
            continue
        key = name[len("KAFKA_") :].lower()
        key = key.replace("___", "\0").replace("__", "\1").replace("_", ".")
        key = key.replace("\0", "-").replace("\1", "_")
        properties[key] = str(value).replace("$$", "$")
    return properties


def test_compose_kafka_speaks_only_tls_outside_its_own_loopback() -> None:
    """D30: every listener other containers can reach is TLS; the plaintext controller listener
    (whose ANONYMOUS principal is a super user) is bound to the container's loopback."""
    props = _kafka_properties()
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    for listener in props["listeners"].split(","):
        name, _, address = listener.partition("://")
        if protocols[name] in {"PLAINTEXT", "SASL_PLAINTEXT"}:
            assert address.startswith("127.0.0.1:"), f"{name} in clear on {address}"
        else:
            assert protocols[name] in {"SSL", "SASL_SSL"}
    for listener in props["advertised.listeners"].split(","):
        assert protocols[listener.partition("://")[0]] in {"SSL", "SASL_SSL"}
    inter_broker = props["inter.broker.listener.name"]
    assert protocols[inter_broker] == "SSL"
    assert props[f"listener.name.{inter_broker.lower()}.ssl.client.auth"] == "required"
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    # The CN of the certificates the tls job issues are the super users besides the controller.
    assert set(props["super.users"].split(";")) == {"User:admin", "User:broker", "User:ANONYMOUS"}
    assert re.fullmatch(
        r"RULE:\^CN=\(\[\^,\]\+\)\$/\$1/,DEFAULT", props["ssl.principal.mapping.rules"]
    )


def test_compose_services_log_in_as_themselves_over_tls() -> None:
    spec = compose()["services"]
    client_port = next(
        item.rpartition(":")[2]
        for item in _kafka_properties()["advertised.listeners"].split(",")
        if item.startswith("CLIENT://")
    )
    for name in ("ingest", "linkage", "pseudonymizer", "audit", "review", "access-board"):
        env = spec[name]["environment"]
        user = env["BIOSTREAM_PRINCIPAL"].removeprefix("User:")
        assert env["BIOSTREAM_KAFKA__SASL_USERNAME"] == user
        assert env["BIOSTREAM_KAFKA__SASL_PASSWORD_FILE"] == f"/run/biostream-kafka/{user}.password"
        assert env["BIOSTREAM_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS"] == f"kafka:{client_port}"
        assert "access" in spec[name]["depends_on"]
    # The access job creates a principal for every hospital the feeder publishes as.
    access_args = spec["access"]["command"]
    hospitals = [access_args[i + 1] for i, arg in enumerate(access_args) if arg == "--hospital"]
    feeder = " ".join(spec["feeder"]["command"])
    assert f"for h in {' '.join(hospitals)};" in feeder


def test_compose_hospital_intakes_speak_tls_as_the_hospitals_own_principal() -> None:
    """D37, D38: the MLLP and FHIR intakes of H001 listen with the `tls` job's intake
    certificate (never plain TCP) and write to Kafka as hospital-h001, which may write only
    feed.H001; the FHIR intake authenticates callers with a generated token."""
    spec = compose()["services"]
    issued = spec["tls"]["command"][0]
    assert "tls server --dir /tls --name intake" in issued
    for name, prefix in (("mllp-h001", "BIOSTREAM_MLLP"), ("fhir-h001", "BIOSTREAM_FHIR")):
        env = spec[name]["environment"]
        assert env[f"{prefix}_HOSPITAL"] == "H001"
        assert env[f"{prefix}_CERTFILE"] == "/run/biostream-kafka-tls/intake.crt"
        assert f"{prefix}_ALLOW_PLAINTEXT" not in env
        assert env["BIOSTREAM_KAFKA__SASL_USERNAME"] == "hospital-h001"
        assert (
            env["BIOSTREAM_KAFKA__SASL_PASSWORD_FILE"]
            == "/run/biostream-kafka/hospital-h001.password"
        )
    token = spec["fhir-h001"]["environment"]["BIOSTREAM_FHIR_TOKEN_FILE"]
    assert Path(token).stem in spec["keygen"]["command"][0]


def test_compose_access_service_reads_the_programmes_board_file_and_its_visa_key() -> None:
    """D47: the board file mounted from config/access/board.yaml, the accounts, session key and
    visa key from the keys volume the keygen job fills (nothing secret in the file)."""
    spec = compose()["services"]
    board = spec["access-board"]
    env = board["environment"]
    assert "./config/access/board.yaml:/etc/biostream-access/board.yaml:ro" in board["volumes"]
    assert env["BIOSTREAM_BOARD_FILE"] == "/etc/biostream-access/board.yaml"
    keygen = spec["keygen"]["command"][0]
    for setting, name in (
        ("BIOSTREAM_USERS_FILE", "access-users"), ("BIOSTREAM_SESSION_KEY_FILE", "access_session"),
        ("BIOSTREAM_VISA_KEY_FILE", "visa.key"),
    ):  # fmt: skip
        assert env[setting].startswith("/run/biostream-keys/") and name in keygen
    assert env["BIOSTREAM_VISA_ISSUER"].startswith("https://")
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]
    }
    assert targets["biostream-access"] == ["access-board:9100"]
