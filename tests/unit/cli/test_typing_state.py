"""The typing notification rules (pure, driven with explicit times)."""

from __future__ import annotations

import pytest

from strangers.cli.typing_state import IDLE_TIMEOUT, TypingState, is_draft


@pytest.mark.parametrize(
    ("text", "draft"),
    [
        ("", False),
        ("   ", False),
        ("h", True),
        ("  hello", True),
        ("/", False),
        ("/next", False),
        ("  /quit", False),
        ("//", True),
        ("//shrug", True),
        ("a/b", True),
    ],
)
def test_is_draft(text: str, draft: bool) -> None:
    assert is_draft(text) is draft


def test_first_keystroke_says_typing_once() -> None:
    state = TypingState()
    assert state.edited(True, now=0.0) is True
    assert state.active
    assert state.edited(True, now=1.0) is None
    assert state.edited(True, now=2.0) is None


def test_stops_after_idle_timeout_from_the_last_keystroke() -> None:
    state = TypingState()
    state.edited(True, now=10.0)
    state.edited(True, now=12.0)
    assert state.deadline() == 12.0 + IDLE_TIMEOUT
    assert state.expire(now=12.0 + IDLE_TIMEOUT - 0.001) is None
    assert state.active
    assert state.expire(now=12.0 + IDLE_TIMEOUT) is False
    assert not state.active
    assert state.deadline() is None
    assert state.expire(now=100.0) is None


def test_typing_again_after_a_pause_says_typing_again() -> None:
    state = TypingState(idle_timeout=5.0)
    state.edited(True, now=0.0)
    assert state.expire(now=5.0) is False
    assert state.edited(True, now=6.0) is True


def test_emptied_line_says_stopped() -> None:
    state = TypingState()
    state.edited(True, now=0.0)
    assert state.edited(False, now=1.0) is False
    assert state.edited(False, now=1.5) is None
    assert state.deadline() is None


def test_command_never_says_typing() -> None:
    state = TypingState()
    assert state.edited(is_draft("/ne"), now=0.0) is None
    assert state.edited(is_draft("/next"), now=0.1) is None
    assert not state.active


def test_submitted_says_stopped_only_when_typing() -> None:
    state = TypingState()
    assert state.submitted() is None
    state.edited(True, now=0.0)
    assert state.submitted() is False
    assert state.submitted() is None
    assert not state.active


def test_forget_takes_nothing_back() -> None:
    state = TypingState()
    state.edited(True, now=0.0)
    state.forget()
    assert not state.active
    assert state.deadline() is None
    assert state.expire(now=100.0) is None
    assert state.edited(False, now=1.0) is None
    # the next stranger hears about the next keystroke
    assert state.edited(True, now=2.0) is True


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match=repr(timeout)):
        TypingState(idle_timeout=timeout)
