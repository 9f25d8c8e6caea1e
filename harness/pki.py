"""A run's own public-key infrastructure: a certificate authority made for one run, the
certificate each service presents, and the certificates an attacker would bring.

Nothing here is committed or shared: every run makes a new CA (and a new key for every
certificate), so a key that leaks from one run opens nothing in the next. Keys are ECDSA P-256:
as strong as RSA-3072 for TLS, and made in microseconds rather than the tenth of a second an RSA
key takes (a lab makes a dozen).

A service's folder (`TLS_DIR`) holds two files, written whole or not at all (a rename):
    ca.pem    the certificate of the CA that every legitimate peer's certificate chains to
    cert.pem  the service's certificate followed by its private key: one file, so that a
          rotation replaces both at once and a reader never pairs a new certificate with an
          old key
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
IDENTITY_FILE = "cert.pem"
# A certificate made now is valid from a minute ago: a peer whose clock runs a little behind
# must not see it as "not yet valid".
BACKDATE = datetime.timedelta(minutes=1)
LIFETIME = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key, as PEM."""

    certificate: x509.Certificate
    key_pem: bytes

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def pem(self) -> bytes:
        """The certificate, then its key: what `ssl.SSLContext.load_cert_chain` reads."""
        return self.cert_pem + self.key_pem


class CertificateAuthority:
    """A CA that signs the certificates of one run (or an attacker's CA, made the same way)."""

    def __init__(self, name: str) -> None:
        now = _now()
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        name: str,
        *,
        common_name: str | None = None,
        valid_from: datetime.datetime | None = None,
        valid_until: datetime.datetime | None = None,
        with_san: bool = True,
    ) -> Identity:
        """A certificate for `name` (its one DNS subject alternative name), usable to serve and
        to call. `common_name` sets the subject's CN apart from the SAN (an attacker's trick:
        the CN is not an identity); `with_san=False` leaves the SAN out, so that the CN is the
        only name it has (a legacy certificate: it names no one); the validity defaults to from
        a minute ago for an hour."""
        now = _now()
        key = ec.generate_private_key(ec.SECP256R1())
        builder = x509.CertificateBuilder()
        if with_san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
        certificate = (
            builder.subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or name)])
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or now - BACKDATE)
            .not_valid_after(valid_until or now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return Identity(certificate, key_pem)


def write_folder(folder: Path, ca: CertificateAuthority, identity: Identity) -> None:
    """Give a service its CA and its identity (`ca.pem`, `cert.pem`), each file replaced whole."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / CA_FILE, ca.cert_pem)
    write_atomically(folder / IDENTITY_FILE, identity.pem)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never a part."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o600)  # a private key: the owner only
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class RunPKI:
    """The PKI of one run: its CA, the folder of each service that has an identity, and files
    for the checks (their own certificates, an attacker's)."""

    def __init__(self, root: Path) -> None:
        self.root = root  # the checks' files: a folder of the run, removed with it
        self.ca = CertificateAuthority("chaoslab run CA")
        self.folders: dict[str, Path] = {}
        self.current: dict[str, Identity] = {}

    def provision(self, service: str, folder: Path) -> None:
        """Give `service` its first certificate, in `folder` (its TLS_DIR)."""
        self.folders[service] = folder
        self.current[service] = self.ca.issue(service)
        write_folder(folder, self.ca, self.current[service])

    def rotate(self, service: str) -> Identity:
        """A new key and certificate for `service`, in place of its current ones (same name,
        same CA): what an operator's renewal does. The service must pick them up itself."""
        identity = self.ca.issue(service)
        self.replace(service, identity)
        return identity

    def replace(self, service: str, identity: Identity) -> None:
        """Put any identity (another CA's, say) in `service`'s folder: for a lab-owned service
        that plays an attacker."""
        write_atomically(self.folders[service] / IDENTITY_FILE, identity.pem)
        self.current[service] = identity

    @property
    def ca_file(self) -> Path:
        path = self.root / CA_FILE
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomically(path, self.ca.cert_pem)
        return path

    def file_for(self, label: str, identity: Identity) -> Path:
        """`identity` as a file the checks can load (`load_cert_chain`), named by `label`."""
        if not label.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"a label is letters, digits, '-' and '_': {label!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{label}.pem"
        write_atomically(path, identity.pem)
        return path


READY_FILE = "ready"  # written last by `python -m harness.pki`: every folder is complete


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.pki FOLDER NAME...`: a new CA, and FOLDER/NAME/{ca.pem,cert.pem} for
    each NAME (then FOLDER/ready). For a Compose profile, which has no harness to make them."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m harness.pki FOLDER NAME...", file=sys.stderr)
        return 2
    root = Path(args[0])
    pki = RunPKI(root)
    for name in args[1:]:
        pki.provision(name, root / name)
    write_atomically(root / READY_FILE, b"")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
