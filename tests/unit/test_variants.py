"""harness.variants: wrong and also-correct fixes found beside a lab, read from docstrings."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._errors import LabDefinitionError
from harness.lab import load_lab
from harness.variants import load_variant, overlay, resolve_variant, variants
from tests.unit.conftest import WriteLab
from tests.unit.test_lab import manifest

WRONG = '''"""payments, keeping keys in memory.

Wrong: the keys live in a dict, so a restart forgets them.
Rejected by: test_5_a_retry_after_a_crash,
    test_1_charges_once
"""
'''

ALSO = '''"""payments with BEGIN IMMEDIATE.

Also correct: claims the key in a write transaction instead of INSERT OR IGNORE.
"""
'''


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_every_variant_is_found_in_order(write_lab: WriteLab) -> None:
    root = write_lab(manifest())
    put(root / "wrong" / "memory_keys.py", WRONG)
    put(root / "wrong" / "README.md", "not a variant")
    put(root / "also-correct" / "begin_immediate.py", ALSO)
    found = variants(load_lab(root))
    assert [v.label for v in found] == [
        "starter",
        "solution",
        "wrong/memory_keys",
        "also-correct/begin_immediate",
    ]
    starter, solution, wrong, also = found
    assert starter.expected_failures == {"test_1_charges_once"}
    assert solution.expected_failures == set()
    assert wrong.expected_failures == {"test_5_a_retry_after_a_crash", "test_1_charges_once"}
    assert wrong.about == "the keys live in a dict, so a restart forgets them."
    assert also.expected_failures == set()
    assert also.about.startswith("claims the key")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"""payments."""\n', "which checks reject it"),
        ('"""payments.\n\nWrong: x\n"""\n', "which checks reject it"),
        ('"""payments.\n\nRejected by: test_1\n"""\n', "which checks reject it"),
        ('"""payments.\n\nWrong: x\nRejected by: ,\n"""\n', "names no check"),
        ("def broken(:\n", "cannot be read"),
    ],
)
def test_a_wrong_fix_without_its_verdict_is_refused(
    write_lab: WriteLab, text: str, problem: str
) -> None:
    root = write_lab(manifest())
    path = put(root / "wrong" / "bad.py", text)
    with pytest.raises(LabDefinitionError, match=problem) as error:
        load_variant(load_lab(root), path)
    assert "bad.py" in str(error.value)


def test_an_also_correct_fix_must_say_how_it_differs(write_lab: WriteLab) -> None:
    root = write_lab(manifest())
    path = put(root / "also-correct" / "x.py", '"""payments."""\n')
    with pytest.raises(LabDefinitionError, match="Also correct:"):
        load_variant(load_lab(root), path)


def test_a_file_variant_replaces_the_one_learner_file(write_lab: WriteLab, tmp_path: Path) -> None:
    root = write_lab(manifest())
    lab = load_lab(root)
    variant = put(root / "wrong" / "memory_keys.py", WRONG)
    services = tmp_path / "copy" / "services"
    services.mkdir(parents=True)
    overlay(lab, variant, services)
    assert (services / "payments.py").read_text() == WRONG


def test_a_folder_variant_is_laid_over_services(write_lab: WriteLab, tmp_path: Path) -> None:
    root = write_lab(manifest())
    lab = load_lab(root)
    folder = root / "wrong" / "two_files"
    put(folder / "payments.py", WRONG)
    put(folder / "helpers.py", "X = 1\n")
    assert load_variant(lab, folder).name == "two_files"
    services = tmp_path / "copy" / "services"
    services.mkdir(parents=True)
    overlay(lab, folder, services)
    assert sorted(p.name for p in services.iterdir()) == ["helpers.py", "payments.py"]


def test_a_folder_variant_keeps_the_solutions_other_files(
    write_lab: WriteLab, tmp_path: Path
) -> None:
    root = write_lab(manifest())
    lab = load_lab(root)
    put(root / "solution" / "payments.py", "SOLVED = True\n")
    put(root / "solution" / "ledger_client.py", "CLIENT = 'solution'\n")
    folder = root / "wrong" / "one_file_changed"
    put(folder / "payments.py", WRONG)
    services = tmp_path / "copy" / "services"
    put(services / "ledger_client.py", "CLIENT = 'starter'\n")
    overlay(lab, folder, services)
    assert (services / "payments.py").read_text() == WRONG
    assert (services / "ledger_client.py").read_text() == "CLIENT = 'solution'\n"


def test_a_missing_variant_names_the_ones_there_are(write_lab: WriteLab) -> None:
    root = write_lab(manifest())
    put(root / "wrong" / "memory_keys.py", WRONG)
    lab = load_lab(root)
    assert resolve_variant(lab, "wrong/memory_keys.py") == (root / "wrong/memory_keys.py")
    # The names the message lists work too: a variant's label, without its .py.
    assert resolve_variant(lab, "wrong/memory_keys") == (root / "wrong/memory_keys.py").resolve()
    with pytest.raises(LabDefinitionError, match="wrong/memory_keys"):
        resolve_variant(lab, "wrong/nope.py")
