"""HTTPS through the hook's transport: certificates are verified, and the CA bundle is honoured.

A throwaway CA and a server certificate for 127.0.0.1 are made at test time; the server is a
small TLS endpoint answering set-state as the API does.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.validation import StateChange
from tests.drivers import endpoints_for, run_async

POSITION = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, issuer_key: Any, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Python 3.13 verifies with VERIFY_X509_STRICT, which wants key identifiers and key usage.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("JobMojito test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@pytest.fixture
def tls_api(tls_files: dict[str, Path]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class SetState(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "json": json.loads(body)})
            answer = b'{"success": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SetState)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/functions/v1", received
    server.shutdown()
    server.server_close()


def test_a_certificate_from_an_unknown_ca_is_refused_at_once(
    tls_api: tuple[str, list[dict[str, Any]]], jobmojito_conn: Any
) -> None:
    url, received = tls_api
    hook = JobMojitoHook(jobmojito_conn(host=url, password="opaque-token"))
    with pytest.raises(JobMojitoConfigError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        hook.set_interview_state(POSITION, status="active")
    assert isinstance(raised.value, AirflowFailException)
    assert received == []


def test_the_ca_bundle_from_the_environment_is_trusted(
    tls_api: tuple[str, list[dict[str, Any]]],
    tls_files: dict[str, Path],
    jobmojito_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = tls_api
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
    hook = JobMojitoHook(jobmojito_conn(host=url, password="opaque-token"))
    assert hook.set_interview_state(POSITION, status="active") == {"success": True}
    assert received == [
        {
            "path": "/functions/v1/job-interview-set-state",
            "json": {"position_id": POSITION, "status": "active"},
        }
    ]


def test_the_async_driver_refuses_a_certificate_from_an_unknown_ca_too(
    tls_api: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = tls_api
    endpoints = endpoints_for(url, password="opaque-token")
    with pytest.raises(JobMojitoConfigError, match="CERTIFICATE_VERIFY_FAILED"):
        run_async(endpoints.set_state(StateChange.build(POSITION, "active")))
    assert received == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_async_driver_trusts_the_ca_bundle_requests_would(
    tls_api: tuple[str, list[dict[str, Any]]],
    tls_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    url, received = tls_api
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests reads the first one set
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_files["ca"]))
    endpoints = endpoints_for(url, password="opaque-token")
    assert run_async(endpoints.set_state(StateChange.build(POSITION, "active"))) == {"success": True}
    assert received == [
        {
            "path": "/functions/v1/job-interview-set-state",
            "json": {"position_id": POSITION, "status": "active"},
        }
    ]
