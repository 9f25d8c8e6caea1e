"""harness.pki: a CA per run, certificates that name their holder, renewals replaced whole."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509

from harness.pki import CA_FILE, IDENTITY_FILE, READY_FILE, CertificateAuthority, RunPKI, main


def san(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return names.value.get_values_for_type(x509.DNSName)


def test_a_certificate_names_its_holder_in_its_san_and_chains_to_its_ca() -> None:
    ca, other = CertificateAuthority("run"), CertificateAuthority("attacker")

    identity = ca.issue("payments")
    liar = ca.issue("reports", common_name="checkout")

    identity.certificate.verify_directly_issued_by(ca.certificate)
    assert san(identity.certificate) == ["payments"]
    assert san(liar.certificate) == ["reports"]
    assert liar.certificate.subject.rfc4514_string() == "CN=checkout"
    assert other.issue("payments").certificate.issuer != identity.certificate.issuer
    assert identity.serial != ca.issue("payments").serial


def test_a_legacy_certificate_has_only_a_common_name() -> None:
    legacy = CertificateAuthority("run").issue("checkout", with_san=False)

    assert legacy.certificate.subject.rfc4514_string() == "CN=checkout"
    assert not any(
        isinstance(ext.value, x509.SubjectAlternativeName) for ext in legacy.certificate.extensions
    )


def test_validity_can_be_set_for_an_expired_certificate() -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    expired = CertificateAuthority("run").issue(
        "web", valid_from=past, valid_until=past + datetime.timedelta(hours=1)
    )
    assert expired.certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC)


def test_a_service_folder_loads_into_ssl_and_a_rotation_replaces_the_file(tmp_path: Path) -> None:
    pki = RunPKI(tmp_path / "checks")
    pki.provision("checkout", tmp_path / "checkout")
    folder = tmp_path / "checkout"
    first = folder / IDENTITY_FILE
    inode = first.stat().st_ino

    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=folder / CA_FILE)
    server.load_cert_chain(first)  # the certificate and its key, from one file
    renewed = pki.rotate("checkout")

    assert (folder / IDENTITY_FILE).stat().st_ino != inode  # a new file, renamed in
    assert pki.current["checkout"] == renewed
    assert renewed.cert_pem in (folder / IDENTITY_FILE).read_bytes()
    server.load_cert_chain(folder / IDENTITY_FILE)
    assert oct(first.stat().st_mode & 0o777) == "0o600"
    client = ssl.create_default_context(cafile=pki.ca_file)
    client.load_cert_chain(pki.file_for("web", pki.ca.issue("web")))


def test_the_compose_entry_point_makes_every_folder_then_says_ready(tmp_path: Path) -> None:
    assert main([str(tmp_path), "ledger", "payments"]) == 0

    for name in ("ledger", "payments"):
        assert (tmp_path / name / CA_FILE).read_bytes() == (
            tmp_path / "ledger" / CA_FILE
        ).read_bytes()
        assert (tmp_path / name / IDENTITY_FILE).exists()
    assert (tmp_path / READY_FILE).exists()
    assert main([str(tmp_path)]) == 2
