"""The line being typed in the terminal UI wraps at word boundaries (cli/input_wrap.py), shown
through prompt_toolkit itself: the UI's own prompt session on a pipe input, rendered to a screen
of a known size."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.utils import get_cwidth

from strangers.cli.input_wrap import wrap_points
from strangers.cli.interactive import prompt_session

COLUMNS = 30
LEFT = "\x1b[D"
HOME = "\x1b[H"


class SizedOutput(DummyOutput):
    def get_size(self) -> Size:
        return Size(rows=12, columns=COLUMNS)


def render(keys: str, typed: str, word_wrap: bool = True) -> tuple[list[str], tuple[int, int]]:
    """Type ``keys`` into the terminal UI's input line; the rows it shows and the cursor (x, y)
    once the buffer holds ``typed`` and the cursor has moved as the keys say."""

    async def run() -> tuple[list[str], tuple[int, int]]:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=SizedOutput()):
            session = prompt_session(lambda: FormattedText([("", "status")]), KeyBindings())
            if not word_wrap:
                session.input_processors = []
            shown: list[tuple[list[str], tuple[int, int]]] = []
            moved = keys.count(LEFT) + keys.count(HOME)
            wanted = len(typed) - keys.count(LEFT) if HOME not in keys else 0

            def after_render(app) -> None:
                buffer = app.current_buffer
                if shown or buffer.text != typed or (moved and buffer.cursor_position != wanted):
                    return
                screen = app.renderer.last_rendered_screen
                rows = ["".join(screen.data_buffer[y][x].char for x in range(COLUMNS)).rstrip()
                        for y in range(screen.height)]
                window = app.layout.current_window
                cursor = screen.get_cursor_position(window)
                shown.append((rows, (cursor.x, cursor.y)))
                app.exit(result="")

            session.app.after_render += after_render
            pipe.send_text(keys)
            await asyncio.wait_for(session.prompt_async(), 10)
            return shown[0]

    return asyncio.run(run())


LONG = "tea or coffee? coffee, obviously, with extraordinarily little milk please"


def test_a_long_input_line_wraps_at_word_boundaries_like_the_transcript():
    rows, cursor = render(LONG, LONG)
    text_rows = [row for row in rows if row.strip() and row != "status"]
    assert text_rows == [
        "> tea or coffee? coffee,",
        "  obviously, with",
        "  extraordinarily little milk",
        "  please",
    ]
    assert cursor == (len("  please"), 3)  # right after the last word typed


def test_without_word_wrap_the_same_line_cuts_words():
    """The guard that the test above is not vacuous: prompt_toolkit alone cuts "obviously"."""
    rows, _cursor = render(LONG, LONG, word_wrap=False)
    assert rows[:2] == ["> tea or coffee? coffee, obvio", "  usly, with extraordinarily l"]


def test_the_cursor_never_sits_in_the_padding():
    # Home: the start of the line; left arrows from the end: inside the last word of a row
    rows, cursor = render(LONG + HOME, LONG)
    assert cursor == (2, 0)
    back = len(" milk please")
    rows, cursor = render(LONG + LEFT * back, LONG)
    assert cursor == (2 + len("extraordinarily little"), 2)  # after "little", before " milk"
    rows, cursor = render(LONG + LEFT * len("please"), LONG)
    assert cursor == (2, 3)  # on the first letter of the moved word, not at the padding


def test_a_word_wider_than_a_row_is_cut_and_wide_characters_count_twice():
    word = "x" * 40
    rows, _cursor = render(f"see {word} end", f"see {word} end")
    text_rows = [row for row in rows if row.strip() and row != "status"]
    assert text_rows == ["> see", "  " + "x" * 28, "  " + "x" * 12 + " end"]
    wide = "漢字漢字漢字漢字漢字 漢字漢字"
    rows, _cursor = render(wide, wide)
    text_rows = [row for row in rows if row.strip() and row != "status"]
    assert [row.replace(" ", "") for row in text_rows] == [">漢字漢字漢字漢字漢字", "漢字漢字"]


@given(st.lists(st.text(alphabet="ab é漢", min_size=1, max_size=12), max_size=12),
       st.integers(min_value=1, max_value=40))
def test_wrap_points_break_only_before_words_that_fit_a_row(words, room):
    chars = list(" ".join(words))
    pads = wrap_points(chars, room)
    # replay prompt_toolkit's character wrap with the padding: no row is wider than room, and a
    # word that fits a row is never split across two rows
    rows: list[list[tuple[int, str]]] = [[]]
    column = 0
    for index, char in enumerate(chars):
        for _ in range(pads.get(index, 0)):
            assert column < room
            column += 1
        if index in pads:
            assert chars[index] != " " and (index == 0 or chars[index - 1] == " ")
        width = get_cwidth(char)
        if column + width > room:
            rows.append([])
            column = 0
        rows[-1].append((index, char))
        column += width
        assert column <= room or width > room
    row_of = {index: number for number, row in enumerate(rows) for index, _char in row}
    start = 0
    for word in " ".join(words).split(" "):
        end = start + len(word)
        if word and sum(get_cwidth(char) for char in word) <= room:
            assert row_of[start] == row_of[end - 1], (words, room, pads)
        start = end + 1
