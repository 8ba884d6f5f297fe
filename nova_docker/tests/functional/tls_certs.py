# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""A throwaway PKI for a TLS engine on loopback: a CA, a server, a client.

EC P-256 keys, so that making one takes milliseconds.  Nothing here is fit
for anything but a test.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Pki:
    """Paths of PEM files."""

    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


@dataclasses.dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_pki(directory: str, prefix: str = "") -> Pki:
    """Write a CA, a server cert for 127.0.0.1 and a client cert."""
    ca = _make_ca(f"{prefix}nova-docker test CA")
    server = _issue(ca, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, server=True)
    client = _issue(ca, "nova-compute", ExtendedKeyUsageOID.CLIENT_AUTH)
    paths = {
        "ca_cert": _write_cert(directory, f"{prefix}ca.pem", ca.cert),
        "server_cert": _write_cert(directory, f"{prefix}server.pem", server.cert),
        "server_key": _write_key(directory, f"{prefix}server-key.pem", server.key),
        "client_cert": _write_cert(directory, f"{prefix}client.pem", client.cert),
        "client_key": _write_key(directory, f"{prefix}client-key.pem", client.key),
    }
    return Pki(**paths)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _make_ca(common_name: str) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _Issuer(cert, key)


def _issue(ca: _Issuer, common_name: str, purpose, server: bool = False) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    )
    if server:
        names = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=False
        )
    return _Issuer(builder.sign(ca.key, hashes.SHA256()), key)


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_cert(directory: str, name: str, cert: x509.Certificate) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(directory: str, name: str, key: ec.EllipticCurvePrivateKey) -> str:
    path = os.path.join(directory, name)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path
