"""A Ctrl-C or a SIGTERM at any moment of the command ends it quietly, with 128 + N."""

from __future__ import annotations

import signal

import pytest

from harness import cli


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_arguments_are_parsed_exits_quietly(
    sig: signal.Signals, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def parser_interrupted() -> None:
        signal.raise_signal(sig)

    monkeypatch.setattr(cli, "_parser", parser_interrupted)
    monkeypatch.setattr(cli, "_stopped_by", None)
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert cli.main(["list"]) == 128 + sig
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert "everything the run started has been stopped" in capsys.readouterr().err
