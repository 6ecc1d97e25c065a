"""Every key of the chat, written once: the screens' BINDINGS, the help table and the
command palette's hints are all built from these rows."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual's key names, comma-separated
    action: str | None  # None: handled by a widget, listed for help only
    label: str  # the footer's word
    help: str  # the help table's description
    shown: str = ""  # how the help names the key; default: from `keys`
    priority: bool = False

    @property
    def display(self) -> str:
        if self.shown:
            return self.shown
        first = self.keys.split(",")[0]
        return "+".join(part.capitalize() if len(part) > 1 else part.upper()
                        for part in first.split("+")).replace("Escape", "Esc")

    def binding(self) -> Binding:
        assert self.action is not None
        return Binding(self.keys, self.action, self.label, priority=self.priority)


CHAT_KEYS = (
    Key("escape", "stop", "Stop",
        "stop the answer now, keeping what was written (or stop an index run)"),
    Key("ctrl+n", "new_chat", "New chat", "new conversation"),
    Key("ctrl+o", "conversations", "Chats",
        "conversations: Enter resumes, r renames, d deletes, e exports Markdown"),
    Key("ctrl+t", "copy_answer", "Copy answer", "copy the last answer (OSC 52 clipboard)"),
    Key("ctrl+r", "copy_code", "Copy code", "copy the last code block of the last answer"),
)
APP_KEYS = (
    Key("f1", "help", "Help", "this help"),
    Key("ctrl+q", "quit", "Quit", "quit", priority=True),
)
WIDGET_KEYS = (  # handled by the question box, focus and the palette themselves
    Key("enter", None, "", "send the question"),
    Key("ctrl+j", None, "", "new line in the question (also Shift+Enter or Alt+Enter where "
        "reported)"),
    Key("tab", None, "", "move between the question, the conversation and the sources",
        shown="Tab / Shift+Tab"),
    Key("up", None, "", "show that chunk's text below the list", shown="↑ ↓ in Sources"),
    Key("ctrl+p", None, "", "commands: new chat, switch database, re-index, cache mode, theme…"),
)
HELP_ORDER = (*WIDGET_KEYS[:2], CHAT_KEYS[0], *CHAT_KEYS[1:], *WIDGET_KEYS[2:], *APP_KEYS)


def bindings(keys: tuple[Key, ...]) -> list[Binding]:
    return [key.binding() for key in keys]


def shortcut(action: str) -> str:
    """The key of `action` as the help shows it (`Ctrl+N`), for palette hints."""
    for key in (*CHAT_KEYS, *APP_KEYS, *WIDGET_KEYS):
        if key.action == action:
            return key.display
    raise KeyError(action)
