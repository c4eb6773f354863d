"""TLS with a self-signed certificate, ended in BentoML itself or at nginx in front of it.

Clients that trust the certificate get answers over HTTPS; plain HTTP and clients that trust
another certificate get no answer from the model.
"""

import datetime
import ipaddress
import ssl

import httpx
import pytest
from conftest import require
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from servers import AUTH, START_DEADLINE_S

from credit_risk.schema import EXAMPLE_INPUT
from ops import processes, replicas
from ops.nginx import find_nginx


def self_signed_certificate(folder, name: str) -> tuple:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)  # self-signed: it is its own issuer
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(certificate, key) files of the server under test."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), "credit-risk")


@pytest.fixture(scope="module")
def https_server(trained, certificate):
    """(URL, certificate) of a `bentoml serve` speaking only HTTPS."""
    cert, key = certificate
    folder = cert.parent
    port = processes.free_port()
    # --8<-- [start:tls-config]
    # The same as `bentoml serve --ssl-certfile ... --ssl-keyfile ...`, as configuration.
    tls = {"BENTOML_CONFIG_OPTIONS": " ".join([
        "services.credit_risk_service.ssl.enabled=true",
        f"services.credit_risk_service.ssl.certfile={cert}",
        f"services.credit_risk_service.ssl.keyfile={key}",
    ])}
    # --8<-- [end:tls-config]
    process = processes.bentoml_serve(port, folder / "serve.log", **tls)
    url = f"https://127.0.0.1:{port}"
    try:
        # httpx trusts the certificates in SSL_CERT_FILE when no other trust is given, so
        # the shared readiness poll can speak HTTPS to this server.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(cert))
            processes.wait_until_ready(url, process, START_DEADLINE_S)
        yield url, cert
    except BaseException:
        print((folder / "serve.log").read_text()[-5000:])
        raise
    finally:
        processes.stop(process)


@pytest.mark.timeout(180)
def test_https_answers_a_client_that_trusts_the_certificate(https_server, service):
    url, cert = https_server
    trusting = ssl.create_default_context(cafile=cert)  # verifies the chain and the host name
    with httpx.Client(verify=trusting, headers=AUTH, timeout=10) as client:
        response = client.post(f"{url}/score", json=EXAMPLE_INPUT.model_dump())
        assert response.status_code == 200, response.text
        assert response.json()["decision"] in {"approve", "decline"}
        tls_version = client.get(f"{url}/readyz").extensions["network_stream"].get_extra_info(
            "ssl_object").version()
    assert tls_version in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.timeout(180)
def test_plain_http_gets_no_answer(https_server, service):
    url, _ = https_server
    with pytest.raises(httpx.TransportError):  # the server wants a TLS handshake, not HTTP
        httpx.post(url.replace("https://", "http://"), headers=AUTH, timeout=10,
                   json=EXAMPLE_INPUT.model_dump())


@pytest.mark.timeout(180)
def test_a_client_trusting_another_certificate_refuses_the_server(https_server, tmp_path):
    url, _ = https_server
    stranger, _ = self_signed_certificate(tmp_path, "someone-else")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/readyz", verify=ssl.create_default_context(cafile=stranger),
                  timeout=10)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/readyz", timeout=10)  # the system's CAs do not know it either


@pytest.mark.timeout(300)
def test_nginx_ends_tls_in_front_of_a_plain_http_replica(trained, certificate, service,
                                                          tmp_path):
    require(find_nginx() is not None, "nginx is not installed (apt-get install nginx)")
    cert, key = certificate
    run_dir = replicas.make_run_dir()
    started, nginx = [], None
    try:
        started = replicas.start_replicas(1, run_dir, START_DEADLINE_S, OMP_NUM_THREADS="1")
        front = processes.free_port()
        nginx = replicas.start_nginx([r.port for r in started], front, run_dir,
                                     tls=(cert, key))
        url, body = f"https://127.0.0.1:{front}", EXAMPLE_INPUT.model_dump()
        trusting = ssl.create_default_context(cafile=cert)
        answer = httpx.post(f"{url}/score", json=body, headers=AUTH, verify=trusting,
                            timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"] in {"approve", "decline"}

        plain = httpx.post(f"http://127.0.0.1:{front}/score", json=body, headers=AUTH,
                           timeout=10)
        assert plain.status_code == 400  # nginx's own refusal; nothing reached the replica
        assert "plain HTTP request was sent to HTTPS port" in plain.text

        stranger, _ = self_signed_certificate(tmp_path, "someone-else")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/readyz", verify=ssl.create_default_context(cafile=stranger),
                      timeout=10)
    finally:
        replicas.stop_all(nginx, started)
