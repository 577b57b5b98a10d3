"""Word wrap for the line being typed in the terminal UI.

prompt_toolkit wraps a long input line character by character: a word is cut
at the terminal's edge. :class:`WordWrap` is an input processor that makes it
wrap at word boundaries, as the transcript above it does (``display.wrap``):
before a word that would not fit on the row it pads the row with spaces (for
display only; the buffer is unchanged), so prompt_toolkit's own wrap starts
the word on the next row. A word wider than a row starts a row and is cut, as
in the transcript.
Rows after the first are indented by the prompt's width (the session's
``prompt_continuation``), so :class:`WordWrap` is told that width.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.layout.utils import explode_text_fragments
from prompt_toolkit.utils import get_cwidth

PAD_STYLE = "class:input-wrap"


def wrap_points(chars: list[str], room: int) -> dict[int, int]:
    """Where a line of ``chars`` (one character each) needs padding to wrap at words.

    Returns {index of a word's first character: spaces to insert before it}.
    Rows are ``room`` columns wide; a character that does not fit on a row goes
    to the next one (as prompt_toolkit wraps). A word moves to the next row when
    it, and the space after it, would not fit on this one; a word wider than a
    row starts a row and is cut (as ``display.wrap`` does). Spaces are never
    moved.
    """
    room = max(room, 1)
    pads: dict[int, int] = {}
    column = 0
    index = 0
    while index < len(chars):
        char = chars[index]
        if char != " " and (index == 0 or chars[index - 1] == " "):  # a word starts
            end = index
            width = 0
            while end < len(chars) and chars[end] != " ":
                width += max(get_cwidth(chars[end]), 0)
                end += 1
            need = width + (1 if end < len(chars) else 0)  # the word and the space after it
            if column > 0 and column + need > room:
                pads[index] = room - column
                column = 0
        char_width = max(get_cwidth(char), 0)
        if column + char_width > room:  # prompt_toolkit's own wrap
            column = 0
        column += char_width
        index += 1
    return pads


class WordWrap(Processor):
    """Pads the input line so that prompt_toolkit's character wrap falls between words.

    ``prefix_width``: the columns taken on every row by the prompt (first row)
    and the continuation (the rows after it), which must be as wide.
    """

    def __init__(self, prefix_width: int | Callable[[], int]) -> None:
        self._prefix_width = prefix_width

    def prefix_width(self) -> int:
        width = self._prefix_width
        return width() if callable(width) else width

    def apply_transformation(self, transformation_input: TransformationInput) -> Transformation:
        fragments = explode_text_fragments(transformation_input.fragments)
        room = transformation_input.width - self.prefix_width()
        pads = wrap_points([text for _style, text, *_ in fragments], room)
        if not pads:
            return Transformation(transformation_input.fragments)
        shown: StyleAndTextTuples = []
        shift = [0] * (len(fragments) + 1)  # shift[i]: padding inserted before source index i
        total = 0
        for index, fragment in enumerate(fragments):
            pad = pads.get(index, 0)
            shown += [(PAD_STYLE, " ")] * pad
            total += pad
            shift[index] = total
            shown.append(fragment)
        shift[len(fragments)] = total
        starts = sorted((index + shift[index], index) for index in pads)  # display index of each padded word

        def source_to_display(position: int) -> int:
            return position + shift[min(max(position, 0), len(fragments))]

        def display_to_source(position: int) -> int:
            before = 0
            for display_start, source_start in starts:
                pad = pads[source_start]
                if position < display_start - pad:
                    break
                if position < display_start:  # in the padding: the word's first character
                    return source_start
                before = shift[source_start]
            return position - before

        return Transformation(shown, source_to_display, display_to_source)
