"""The client certificate's subject as text (``request.tls.client_subject``, WSGI ``SSL_CLIENT_S_DN``).

The oracle is the ``cryptography`` package's RFC 4514 parser: the text
evloop makes from what ``ssl`` decodes of a certificate must parse back to
the certificate's own name, attribute for attribute, RDN for RDN.
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evloop.net.tls_context import _dn_text


def _decoded_subject(name: x509.Name, tmp_path: Path) -> tuple:
    """``name`` as ``SSLSocket.getpeercert()`` gives a certificate's subject (a self-signed certificate, decoded by ssl)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ssl._ssl._test_decode_cert(str(path))["subject"]  # type: ignore[attr-defined]


def _name(rdns: list[list[tuple[x509.ObjectIdentifier, str]]]) -> x509.Name:
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value) for oid, value in rdn])
                      for rdn in rdns])


NAMES = {
    "plain": [[(NameOID.COMMON_NAME, "alice")], [(NameOID.ORGANIZATION_NAME, "Example")]],
    "multi-valued RDN": [[(NameOID.COMMON_NAME, "alice"), (NameOID.USER_ID, "a1")],
                         [(NameOID.ORGANIZATIONAL_UNIT_NAME, "Dev")], [(NameOID.COUNTRY_NAME, "NZ")]],
    "specials": [[(NameOID.ORGANIZATION_NAME, 'A, B + C "D" <E> F; G = H \\ I')]],
    "leading and trailing": [[(NameOID.COMMON_NAME, "#hash ")], [(NameOID.ORGANIZATIONAL_UNIT_NAME, " lead")],
                             [(NameOID.LOCALITY_NAME, "a\\ ")], [(NameOID.STATE_OR_PROVINCE_NAME, " ")]],
    "control characters": [[(NameOID.COMMON_NAME, "line\r\nbreak\x01\x7f")]],
    "non-ASCII": [[(NameOID.COMMON_NAME, "Zoë Ω")], [(NameOID.DOMAIN_COMPONENT, "example")]],
}


@pytest.mark.parametrize("rdns", NAMES.values(), ids=NAMES.keys())
def test_the_subject_text_parses_back_to_the_certificates_name(rdns, tmp_path):
    name = _name(rdns)
    text = _dn_text(_decoded_subject(name, tmp_path))
    assert x509.Name.from_rfc4514_string(text) == name, text
    assert text.isprintable(), text  # no control character reaches a log line or a header


def test_the_most_specific_rdn_comes_first_and_a_multi_valued_one_is_joined_with_plus(tmp_path):
    assert _dn_text(_decoded_subject(_name(NAMES["multi-valued RDN"]), tmp_path)) == "C=NZ,OU=Dev,CN=alice+UID=a1"
