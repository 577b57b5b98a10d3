"""The page's Start with the options of Omegle's front page (cli/web/session.py, protocol §7.4):
the language, "Discuss questions" and a question to ask."""

from __future__ import annotations

import pytest

from strangers.cli.web.session import MAX_QUESTION, Start, StartCommandError, parse_page_command


def test_start_takes_language_questions_and_a_question():
    assert parse_page_command('{"cmd": "start", "interests": ["tea"], "lang": "fr", "questions": true}') == Start(
        ("tea",), "fr", True, "")
    assert parse_page_command('{"cmd": "start", "lang": "", "question": "  Tea or coffee? "}') == Start(
        (), "", None, "Tea or coffee?")
    assert parse_page_command('{"cmd": "start", "interests": []}') == Start((), None, None, "")  # the node's


@pytest.mark.parametrize("bad", [
    '{"cmd": "start", "lang": 3}',
    '{"cmd": "start", "lang": "' + "x" * 17 + '"}',
    '{"cmd": "start", "questions": "yes"}',
    '{"cmd": "start", "question": ["q"]}',
    '{"cmd": "start", "question": "' + "q" * (MAX_QUESTION + 1) + '"}',
])
def test_bad_start_options_are_refused(bad):
    with pytest.raises(StartCommandError):
        parse_page_command(bad)
