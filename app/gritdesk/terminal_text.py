"""Text from files, file names, models and errors made safe to show on a terminal.

Indexed text is the user's, but not necessarily written by the user: a downloaded file or a
model's answer can hold `ESC ] 0;title BEL` (retitles the window), `ESC [ 2J` (clears the
screen) or subtler sequences that rewrite what was shown. Everything gritdesk prints or
draws that came from outside goes through `printable` first; Rich and Textual markup is a
separate matter (escape, or build `rich.text.Text`), handled where the markup is.
"""

from __future__ import annotations

import re

# ESC sequences (7-bit and their 8-bit C1 forms), then any control character left over:
# C0 except tab and newline, DEL, C1. A string command (OSC, DCS, SOS, PM, APC) runs to
# BEL or ST; an unterminated one is cut at 256 characters, so a stray `ESC ]` cannot hide
# the rest of a document.
_CONTROL = re.compile(
    r"""
    (?:\x1b\[|\x9b) [0-?]* [\x20-/]* [@-~]?                         # CSI ... final byte
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f]) [^\x07\x1b\x9c]{0,256}
        (?:\x07|\x1b\\|\x9c)?                                       # OSC/DCS/... to BEL or ST
  | \x1b [\x20-/]* [0-~]?                                           # other ESC sequences
  | [\x00-\x08\x0b-\x1f\x7f-\x9f]                                   # any other control
    """,
    re.VERBOSE,
)


def printable(text: str) -> str:
    """`text` without terminal control sequences or control characters (tab and newline
    stay). Stripping is per call: a sequence split across two streamed pieces loses its
    ESC in the first, so what reaches the terminal never holds one."""
    return _CONTROL.sub("", text)


def printable_line(text: str) -> str:
    """`printable`, on one line: newlines and tabs become spaces."""
    return printable(text).replace("\n", " ").replace("\t", " ")
