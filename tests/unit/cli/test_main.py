"""The CLI's last-resort handler: one line, one exit code, never a traceback."""

from __future__ import annotations

import json

import pytest

from strangers.cli import main as cli_main
from strangers.errors import ConfigError


def _run_with(monkeypatch: pytest.MonkeyPatch, failure: BaseException, *args: str) -> int:
    import strangers.cli.session as session

    def failing_session(config, *, json_mode: bool) -> int:
        raise failure

    monkeypatch.setattr(session, "run_session", failing_session)
    return cli_main.main(["chat", "--no-bootstrap", "--no-mdns", *args])


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("boom"), ExceptionGroup("nursery", [RuntimeError("boom")]),
     BaseExceptionGroup("nursery", [ExceptionGroup("inner", [RuntimeError("boom")])])],
    ids=["plain", "grouped", "nested-groups"],
)
def test_an_unexpected_failure_is_one_line_on_stderr_and_exit_1(monkeypatch, capsys, failure) -> None:
    assert _run_with(monkeypatch, failure) == cli_main.EXIT_ERROR == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "strangers: error: unexpected RuntimeError: boom (a bug in strangers)\n"


def test_in_json_mode_it_is_also_one_error_event(monkeypatch, capsys) -> None:
    assert _run_with(monkeypatch, ExceptionGroup("x", [KeyError("k")]), "--json") == 1
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "error", "message": "unexpected KeyError: 'k' (a bug in strangers)"}]
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_strangers_error_inside_a_group_is_told_as_itself(monkeypatch, capsys) -> None:
    assert _run_with(monkeypatch, ExceptionGroup("x", [ConfigError("port 9 is in use")])) == 1
    assert capsys.readouterr().err == "strangers: error: port 9 is in use\n"


def test_interrupts_stay_interrupts(monkeypatch, capsys) -> None:
    assert _run_with(monkeypatch, KeyboardInterrupt()) == 130
    assert _run_with(monkeypatch, BaseExceptionGroup("x", [KeyboardInterrupt()])) == 130
    assert capsys.readouterr().err == ""


def test_a_closed_stdout_does_not_turn_the_report_into_a_traceback(monkeypatch, capsys) -> None:
    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli_main.sys, "stdout", Closed())
    assert _run_with(monkeypatch, RuntimeError("boom"), "--json") == 1
    assert "boom" in capsys.readouterr().err


def test_the_message_of_a_failure_without_text_is_still_one_line() -> None:
    assert cli_main.format_fatal(AssertionError()) == "unexpected AssertionError (a bug in strangers)"
    assert cli_main.format_fatal(ValueError("a\nb")) == "unexpected ValueError: a (a bug in strangers)"


def test_several_failures_at_once_are_still_one_line() -> None:
    group = ExceptionGroup("x", [RuntimeError("first"), ExceptionGroup("y", [KeyError("k")])])
    assert cli_main.format_fatal(group) == "unexpected RuntimeError: first (and 1 more) (a bug in strangers)"
    assert cli_main.format_fatal(ExceptionGroup("x", [ValueError(), ConfigError("bad port")])) == (
        "bad port (and 1 more)")


def test_ask_needs_a_question_and_lang_a_code(capsys) -> None:
    from strangers.cli.main import main

    assert main(["ask", "  ", "--no-bootstrap"]) == 1
    assert "needs a question" in capsys.readouterr().err
    assert main(["chat", "--lang", "french", "--no-bootstrap"]) == 1
    assert "ISO 639-1" in capsys.readouterr().err


def test_the_language_defaults_to_the_locale_and_lang_overrides_it(monkeypatch) -> None:
    from strangers.cli.main import _config_from, build_parser

    def lang(*argv: str) -> str:
        return _config_from(build_parser().parse_args(["chat", "--no-bootstrap", *argv])).lang

    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert lang() == ""
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert lang() == "fr"
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    assert lang() == "de"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    assert lang() == ""  # C: no lane
    assert lang("--lang", "PT") == "pt" and lang("--lang", "") == ""


@pytest.mark.parametrize("argv", [
    ["chat", "-i", "Cinema", "-i", "jazz"], ["chat"], ["chat", "--adult", "-i", "x", "--lang", "fr"],
    ["chat", "--lang", ""], ["ask", "Is a hot dog a sandwich?"], ["web", "-i", "go"], ["serve"],
])
def test_the_keys_read_before_the_imports_are_the_configs(monkeypatch, argv) -> None:
    """The executable picks the servers it connects to before its imports by the first
    search's keys, from its arguments alone: the same keys the node's config gives."""
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    args = cli_main.build_parser().parse_args(argv)
    now = 1_800_000_000.0
    monkeypatch.setattr(cli_main.time, "time", lambda: now)
    early = cli_main._early_search_keys(args)
    assert early == cli_main._config_from(args).first_search_keys(now)
    assert bool(early) == (argv[0] != "serve")


def test_arguments_that_do_not_parse_mean_no_keys_not_a_failure() -> None:
    args = cli_main.build_parser().parse_args(["chat", "-i", "x" * 500])
    assert cli_main._early_search_keys(args) == []
