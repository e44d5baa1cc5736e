"""TLS verification is on by default for every HTTP destination; ``ca_bundle`` and ``verify_tls``.

A real HTTPS receiver (the webhook emulator behind a certificate signed by a CA generated here)
is refused by default with a message that says to set ``ca_bundle``; with the CA as ``ca_bundle``
it works; with ``verify_tls: false`` it works and a warning is printed once per destination and
run, however many syncs use it. The keys are common to every destination type (base.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dbt_activate.alerts import AlertRule, announce
from dbt_activate.core.outcomes import SyncOutcome
from dbt_activate.core.types import Batch, BatchResult, Operation, Record
from dbt_activate.delivery import TlsSettings, observing_http, using_tls
from dbt_activate.destinations.base import check_config, load_destination_type
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.errors import EXIT_CONFIG, ConfigError, DestinationError
from dbt_activate.project import DestinationsFile, load_destinations
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer
from tests.support.delivery import target

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py


@dataclass
class HttpsHook:
    receiver: WebhookReceiver
    url: str
    ca_bundle: Path


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dbt-activate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def https_hook(tmp_path: Path) -> Iterator[HttpsHook]:
    ca, cert, key = _certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with WebhookReceiver() as receiver:
        server = receiver._http._server  # type: ignore[union-attr]  # the emulator's listening socket
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield HttpsHook(receiver, f"https://127.0.0.1:{receiver.port}/hook", ca)


def _send(url: str, settings: TlsSettings | None, name: str = "secure_hook") -> BatchResult:
    batch = Batch(Operation.UPSERT, [Record("1", {"id": 1, "email": "ada@example.com"})])

    async def run() -> BatchResult:
        destination = WebhookDestination(name, {"type": "webhook", "url": url})
        with using_tls(settings):
            try:
                await destination.open(target())
                return await destination.write(target(), batch)
            finally:
                await destination.close()

    return asyncio.run(run())


def test_verification_is_on_by_default_and_says_to_set_ca_bundle(https_hook: HttpsHook) -> None:
    with pytest.raises(DestinationError, match=r"TLS certificate verification failed.*set ca_bundle"):
        _send(https_hook.url, None)
    assert not https_hook.receiver.records


def test_ca_bundle_from_the_common_keys_reaches_the_session(https_hook: HttpsHook) -> None:
    assert _send(https_hook.url, TlsSettings(ca_bundle=str(https_hook.ca_bundle))) == BatchResult()
    assert set(https_hook.receiver.records) == {"1"}


def test_verify_tls_false_works_and_warns_once_per_destination(https_hook: HttpsHook) -> None:
    warned: list[str] = []
    with observing_http(on_warning=warned.append):
        for _ in range(2):  # two syncs of one destination in one run
            _send(https_hook.url, TlsSettings(verify=False))
        _send(https_hook.url, TlsSettings(verify=False), name="other_hook")
    assert set(https_hook.receiver.records) == {"1"}
    assert len(warned) == 2 and "secure_hook" in warned[0] and "other_hook" in warned[1]
    assert "TLS certificate verification is disabled" in warned[0]


@pytest.mark.parametrize(("tls", "delivered"), [
    ({}, False), ({"verify_tls": False}, True), ({"verify": False}, True), ({"ca_bundle": "CA"}, True)])
def test_alerts_follow_the_common_tls_keys_of_their_destination(https_hook: HttpsHook, tls: dict[str, object],
                                                                delivered: bool) -> None:
    config = {"type": "webhook", "url": https_hook.url,
              **{k: (str(https_hook.ca_bundle) if v == "CA" else v) for k, v in tls.items()}}
    destinations = DestinationsFile(path=Path("destinations.yml"), raw={"pager": config}, alerts=())
    failed = SyncOutcome("crm_sync", "customers", "crm", "contacts", "upsert", "error", "", error="HTTP 500")
    rule = AlertRule("pager", "failure", "failure")
    renamed = (pytest.warns(FutureWarning, match="pager.verify is deprecated: rename it to verify_tls")
               if "verify" in tls else contextlib.nullcontext())
    with observing_http(on_warning=lambda message: None), renamed:
        failures = asyncio.run(announce(destinations, [rule], [failed], {}, "run-1"))
    assert bool(https_hook.receiver.payloads()) is delivered
    assert (failures == []) is delivered
    if not delivered:
        assert "TLS certificate verification failed" in failures[0]


def test_the_older_verify_key_is_read_as_verify_tls_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"hook": {"type": "webhook", "url": "https://127.0.0.1:1/", "verify": False}}))
    warnings: list[str] = []
    file = load_destinations(path, on_warning=warnings.append)
    file.build("hook")
    assert TlsSettings.of_config(file.raw["hook"]).verify is False
    assert warnings == [f"{path}: hook.verify is deprecated: rename it to verify_tls (until then it is read as "
                        "verify_tls)"]

    path.write_text(yaml.safe_dump({"hook": {"type": "webhook", "url": "https://127.0.0.1:1/", "verify": False,
                                             "verify_tls": True}}))
    with pytest.raises(ConfigError) as caught:
        load_destinations(path).build("hook")
    assert caught.value.exit_code == EXIT_CONFIG
    assert str(caught.value) == (f"{path}: hook.verify: verify is the deprecated name of verify_tls, and both are "
                                 "set: keep verify_tls only")


@pytest.mark.parametrize("kind", ["webhook", "hubspot", "pipedrive", "salesforce"])
def test_every_destination_type_accepts_the_common_tls_keys(kind: str) -> None:
    destination_type = load_destination_type(kind)
    required = {k.name: "x" for k in destination_type.config_keys if k.required}
    check_config(destination_type, "d", {"type": kind, **required, "verify_tls": False, "ca_bundle": "/ca.pem"},
                 "destinations.yml")  # raises ConfigError for a key the type does not declare:
    with pytest.raises(ConfigError, match="unknown key 'verify_tsl'"):
        check_config(destination_type, "d", {"type": kind, **required, "verify_tsl": False}, "destinations.yml")


def test_a_run_refuses_an_unknown_ca_then_works_with_ca_bundle_and_with_verify_tls_false(
        duckdb_project: Project, https_hook: HttpsHook) -> None:
    blocks = [{"destination": "secure_hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
               "name": name} for name in ("tls_a", "tls_b")]

    def configure(**tls: object) -> None:
        hook = {"type": "webhook", "url": https_hook.url, **tls}
        duckdb_project.write([customer(i) for i in range(1, 6)], blocks, {"secure_hook": hook})

    configure()
    duckdb_project.dbt("build")
    refused = duckdb_project.activate("run")
    assert refused.returncode == 1
    assert "TLS certificate verification failed" in refused.stderr and "ca_bundle" in refused.stderr
    assert not https_hook.receiver.records

    configure(ca_bundle=str(https_hook.ca_bundle))
    trusted = duckdb_project.activate("run")
    assert trusted.returncode == 0, trusted.stderr
    assert "disabled" not in trusted.stderr
    assert len(https_hook.receiver.records) == 5

    configure(verify_tls=False)
    insecure = duckdb_project.activate("run", "--full-resync")
    assert insecure.returncode == 0, insecure.stderr
    assert insecure.stderr.count("TLS certificate verification is disabled") == 1, insecure.stderr
    assert duckdb_project.result_of("tls_b")["counts"]["sent"] == 5
