"""When to tell the stranger "you are typing": a tiny pure state machine.

Omegle's rule: the first keystroke of a message says "typing"; five seconds
without a keystroke, an emptied line or a sent line says "stopped typing".
No clock here: every call that depends on time takes ``now``.

Each method returns the notification to send, if any: ``True`` (started
typing), ``False`` (stopped typing) or ``None`` (tell nothing).
"""

from __future__ import annotations

IDLE_TIMEOUT = 5.0
"""Seconds without a keystroke after which we have "stopped typing"."""


def is_draft(text: str) -> bool:
    """Whether ``text`` in the input line is a message being written.

    A blank line is not, nor is a ``/command`` (``//`` escapes a message that
    starts with a slash, so it is one).
    """
    stripped = text.lstrip()
    if not stripped:
        return False
    return not stripped.startswith("/") or stripped.startswith("//")


class TypingState:
    """Whether the stranger was told that we type, and until when that holds."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout!r}")
        self.idle_timeout = idle_timeout
        self.active = False
        """The stranger was told "typing" and not yet "stopped"."""
        self._last_keystroke: float | None = None

    def edited(self, drafting: bool, now: float) -> bool | None:
        """The input line changed; ``drafting`` is :func:`is_draft` of its new text."""
        if not drafting:
            return self._stop()
        self._last_keystroke = now
        if self.active:
            return None
        self.active = True
        return True

    def submitted(self) -> bool | None:
        """The line was sent (or run as a command)."""
        return self._stop()

    def deadline(self) -> float | None:
        """When :meth:`expire` will say "stopped typing" (None: nothing pending)."""
        if not self.active or self._last_keystroke is None:
            return None
        return self._last_keystroke + self.idle_timeout

    def expire(self, now: float) -> bool | None:
        """Time passed: "stopped typing" once the deadline is reached."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        return self._stop()

    def forget(self) -> None:
        """A new stranger (or none): they were told nothing, so there is nothing to take back."""
        self.active = False
        self._last_keystroke = None

    def _stop(self) -> bool | None:
        was_active = self.active
        self.forget()
        return False if was_active else None
