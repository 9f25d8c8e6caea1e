"""`[secrets]`: a new random value per run, given only to the services that hold it."""

from __future__ import annotations

from harness.compose import compose_files
from harness.environment import LabEnvironment
from harness.lab import load_lab

from .test_lab import CHECKS, SERVICES, manifest

TWO_SERVICES = SERVICES.replace(
    "[services.payments]",
    '[services.api]\ncommand = ["python", "-m", "services.api"]\n\n[services.payments]',
    1,
)
SECRETS = CHECKS + '[secrets]\nCLIENT_SECRET = ["api", "payments"]\nOTHER_SECRET = ["api"]\n'


def test_holders_share_a_secret_others_do_not_get_it_and_the_next_run_gets_a_new_one(write_lab):
    lab = load_lab(write_lab(manifest(services=TWO_SERVICES, checks=SECRETS)))
    first, second = LabEnvironment(lab), LabEnvironment(lab)

    api, payments, ledger = (first.secrets_for(s) for s in ("api", "payments", "ledger-db"))

    assert set(api) == {"CLIENT_SECRET", "OTHER_SECRET"}
    assert payments == {"CLIENT_SECRET": api["CLIENT_SECRET"]}
    assert ledger == {}
    assert len(api["CLIENT_SECRET"]) >= 32
    assert api["CLIENT_SECRET"] != api["OTHER_SECRET"]
    assert first.secrets_for("api") == api  # a restarted service gets the same value
    assert second.secrets_for("api")["CLIENT_SECRET"] != api["CLIENT_SECRET"]


def test_a_compose_profile_takes_a_secret_from_the_shell_or_a_stand_in_that_says_so(write_lab):
    lab = load_lab(write_lab(manifest(services=TWO_SERVICES, checks=SECRETS)))

    text = compose_files([lab])["docker-compose.yml"]

    stand_in = "${CLIENT_SECRET:-idempotency-keys-compose-not-a-secret}"
    assert text.count(f'CLIENT_SECRET: "{stand_in}"') == 2
    assert text.count('OTHER_SECRET: "') == 1
