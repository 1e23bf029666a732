"""The sandbox's own certificate authority, its server certificate, and connected-app JWT keys."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def ensure_certificates(state_dir: Path, host: str) -> tuple[Path, Path, Path]:
    """(ca_file, cert_file, key_file), made once and reused, so clients keep trusting the CA."""
    ca_file, ca_key_file = state_dir / "ca.pem", state_dir / "ca-key.pem"
    cert_file, key_file = state_dir / "server.pem", state_dir / "server-key.pem"
    if not ca_file.exists() or not ca_key_file.exists():
        _write_ca(ca_file, ca_key_file)
    names_file = state_dir / "server-names.txt"
    names = sorted({"localhost", "127.0.0.1", "::1", host})
    if not cert_file.exists() or _read(names_file) != "\n".join(names):
        _write_server_cert(ca_file, ca_key_file, cert_file, key_file, names)
        names_file.write_text("\n".join(names))
    return ca_file, cert_file, key_file


def ensure_rsa_key(path: Path, cache: Path | None = None) -> str:
    """A 2048-bit RSA private key for signing JWT assertions; returns the public key in PEM.

    With `cache`, a new org takes the key of the same name from that folder (made there the
    first time): a 2048-bit key costs about a tenth of a second, and a test suite starts a
    hundred orgs of three apps each."""
    if not path.exists():
        if cache is None:
            _write_private(path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        else:
            cached = cache / path.name
            if not cached.exists():
                cache.mkdir(parents=True, exist_ok=True)
                made = cache / f".{path.name}.{os.getpid()}"
                _write_private(made, rsa.generate_private_key(public_exponent=65537, key_size=2048))
                os.replace(made, cached)  # whole or not at all, whoever else is making it
            path.touch(mode=0o600)
            path.write_bytes(cached.read_bytes())
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _write_private(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(data)


def _write_ca(ca_file: Path, ca_key_file: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quotasync sandbox org CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(ca_key_file, key)
    ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_server_cert(
    ca_file: Path, ca_key_file: Path, cert_file: Path, key_file: Path, names: list[str]
) -> None:
    ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_file, key)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
