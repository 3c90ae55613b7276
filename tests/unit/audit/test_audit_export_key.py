"""D23b: an export travels with its public key, and the README's offline check works as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from audit.domain.checkpoint import Signer, public_key_hex, public_key_pem
from biostream.envelopes import audit_events_in
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import CODEC, SignedLedger, audit

README = Path(__file__).resolve().parents[3] / "README.md"
VENV_BIN = Path(sys.executable).parent


def documented_commands() -> list[str]:
    """The command lines of the README's offline-verify block."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- offline-verify: begin.*?```sh\n(.*?)```", text, re.S)
    assert block, "the README has no offline-verify block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def export_with_key(ledger: SignedLedger, folder: Path) -> Path:
    """What `audit export` and `make demo LEDGER_EXPORT=` write: the export and <export>.pub."""
    folder.mkdir(parents=True, exist_ok=True)
    export = ledger.write(folder / "ledger.jsonl")
    (folder / "ledger.jsonl.pub").write_text(public_key_pem(ledger.signer.public_key))
    return export


def test_the_readme_commands_check_an_export_with_nothing_but_the_export_and_its_key(
    batched_ledger: SignedLedger, tmp_path: Path
) -> None:
    export_with_key(batched_ledger, tmp_path)
    event = audit_events_in(CODEC, batched_ledger.entries[1]["event_payload"])[2]
    commands = documented_commands()
    assert [c.split()[:2] for c in commands] == [
        ["audit", "verify"], ["audit", "verify"], ["audit", "prove"], ["audit", "check-proof"]
    ]  # fmt: skip
    outputs = []
    for line in commands:
        args = shlex.split(line.replace("EVENT_ID", event["event_id"]), comments=True)
        # As the hospital runs it: the installed `audit` command, nothing else on PATH or in env.
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
            env={"PATH": f"{VENV_BIN}:/usr/bin:/bin"},
        )  # fmt: skip
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        outputs.append(result.stdout)
    key_id = batched_ledger.signer.key_id
    assert f"public key: ledger.jsonl.pub (found beside the export), key id {key_id}" in outputs[0]
    assert "ledger intact: 4 entries, 1 signed checkpoints verified" in outputs[0]
    assert "public key: ledger.jsonl.pub (given)" in outputs[1]
    assert f"proof valid: event {event['event_id']}" in outputs[3]


def test_a_signed_export_without_a_key_beside_it_is_refused(
    batched_ledger: SignedLedger, tmp_path: Path
) -> None:
    export = batched_ledger.write(tmp_path / "ledger.jsonl")
    result = audit("verify", "--input", export)
    assert result.returncode == 2
    assert f"no {tmp_path / 'ledger.jsonl.pub'} beside the export" in result.stderr


def test_a_key_beside_the_export_that_did_not_sign_it_fails_and_is_named(
    batched_ledger: SignedLedger, tmp_path: Path
) -> None:
    export = batched_ledger.write(tmp_path / "ledger.jsonl")
    other = Signer(Ed25519PrivateKey.generate())
    (tmp_path / "ledger.jsonl.pub").write_text(public_key_pem(other.public_key))
    result = audit("verify", "--input", export)
    assert result.returncode == 1 and "not the trusted key" in result.stderr
    assert f"key id {other.key_id}" in result.stdout


def test_export_refuses_to_write_an_export_without_its_key_before_reading_kafka(
    tmp_path: Path,
) -> None:
    # Nothing listens on port 9: the refusal comes before any connection.
    result = audit("export", "--output", tmp_path / "l.jsonl",
                   BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:9")  # fmt: skip
    assert result.returncode == 2 and "--public-key" in result.stderr
    assert not (tmp_path / "l.jsonl").exists()


def test_the_published_key_is_pem_or_hex_and_never_the_private_key(tmp_path: Path) -> None:
    seed = "5a" * 32
    (tmp_path / "signing.key").write_text(seed)
    env = {"BIOSTREAM_LEDGER_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
    pem = audit("public-key", "--pem", **env)
    hexed = audit("public-key", **env)
    assert pem.returncode == hexed.returncode == 0, pem.stderr + hexed.stderr
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)))
    assert pem.stdout == public_key_pem(signer.public_key)
    assert hexed.stdout.strip() == public_key_hex(signer.public_key)
    assert seed not in pem.stdout + pem.stderr + hexed.stdout + hexed.stderr
    # Either form checks an export.
    ledger = SignedLedger([], [], signer)
    for name, text in (("k.pem", pem.stdout), ("k.hex", hexed.stdout)):
        (tmp_path / name).write_text(text)
        result = audit("verify", "--input", ledger.write(tmp_path / "e.jsonl"),
                       "--public-key", tmp_path / name)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"key id {signer.key_id}" in result.stdout
