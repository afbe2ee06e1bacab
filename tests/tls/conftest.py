"""Test certificates made at test time (trustme): a CA, a server certificate, a client certificate."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.fixtures import start_demo, start_module_demo  # noqa: F401  (fixtures for this suite)

trustme = pytest.importorskip("trustme")


@dataclass(frozen=True)
class Certificates:
    """Paths of PEM files, and the CA to make contexts with."""

    ca: object
    ca_file: Path
    cert_file: Path          # server: localhost, 127.0.0.1, ::1 (chain included)
    key_file: Path
    other_cert_file: Path    # server: other.test (for SNI)
    other_key_file: Path
    client_cert_file: Path   # a client certificate, key included
    client_key_file: Path

    def server_context(self) -> ssl.SSLContext:
        from evloop.net.tls_context import server_context

        return server_context(str(self.cert_file), str(self.key_file), alpn_protocols=["http/1.1"])

    def client_context(self, *, with_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if with_client_cert:
            context.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return context


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    root = tmp_path_factory.mktemp("certs")
    ca = trustme.CA(organization_name="evloop test CA")
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    other = ca.issue_cert("other.test")
    client = ca.issue_cert("alice@example.test", common_name="alice", organization_name="Example")
    paths = {}
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    for name, cert in (("server", server), ("other", other), ("client", client)):
        cert.private_key_pem.write_to_path(str(root / f"{name}.key"))
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        (root / f"{name}.pem").write_bytes(chain)
        paths[name] = (root / f"{name}.pem", root / f"{name}.key")
    return Certificates(
        ca=ca, ca_file=root / "ca.pem",
        cert_file=paths["server"][0], key_file=paths["server"][1],
        other_cert_file=paths["other"][0], other_key_file=paths["other"][1],
        client_cert_file=paths["client"][0], client_key_file=paths["client"][1],
    )

