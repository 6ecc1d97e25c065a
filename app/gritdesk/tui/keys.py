"""Every key of the chat, written once: the screens' and widgets' BINDINGS, the help table
and the command palette's hints are all built from these rows."""

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
    show: bool = True  # in the footer

    @property
    def display(self) -> str:
        """How help and hints name the key: `Ctrl+N`, `Esc`, `F1`; a lone letter as typed."""
        if self.shown:
            return self.shown
        first = self.keys.split(",")[0]
        if len(first) == 1:
            return first
        return "+".join(part.capitalize() if len(part) > 1 else part.upper()
                        for part in first.split("+")).replace("Escape", "Esc")

    def binding(self) -> Binding:
        assert self.action is not None
        return Binding(self.keys, self.action, self.label, show=self.show, priority=self.priority)


CONVERSATIONS_KEYS = (  # the conversations list (Ctrl+O)
    Key("escape", "close", "Close", "close the list"),
    Key("r", "rename", "Rename", "renames"),
    Key("d", "delete", "Delete", "deletes"),
    Key("e", "export", "Export", "exports Markdown"),
    Key("n", "new_chat", "New chat", "starts a new conversation"),
)
CHAT_KEYS = (
    Key("escape", "stop", "Stop",
        "stop the answer now, keeping what was written (or stop an index run)"),
    Key("ctrl+n", "new_chat", "New chat", "new conversation"),
    Key("ctrl+o", "conversations", "Chats", "conversations: Enter resumes, " + ", ".join(
        f"{key.display} {key.help}" for key in CONVERSATIONS_KEYS
        if key.action in ("rename", "delete", "export"))),
    Key("ctrl+t", "copy_answer", "Copy answer", "copy the last answer (OSC 52 clipboard)"),
    Key("ctrl+r", "copy_code", "Copy code", "copy the last code block of the last answer"),
)
QUIT = Key("ctrl+q", "quit", "Quit", "quit", priority=True)
APP_KEYS = (
    Key("f1", "help", "Help", "this help"),
    QUIT,
)
QUESTION_KEYS = (  # the question box's binding; it reads Enter and Ctrl+J itself
    Key("ctrl+s", "submit", "Send", "send the question too", show=False),
)
WIDGET_KEYS = (  # handled by the question box, focus and the palette themselves
    Key("enter", None, "", "send the question"),
    *QUESTION_KEYS,
    Key("ctrl+j", None, "", "new line in the question (also Shift+Enter or Alt+Enter where "
        "reported)"),
    Key("tab", None, "", "move between the question, the conversation and the sources",
        shown="Tab / Shift+Tab"),
    Key("up", None, "", "show that chunk's text below the list", shown="↑ ↓ in Sources"),
    Key("ctrl+p", None, "", "commands: new chat, switch database, re-index, cache mode, theme…"),
)
HELP_ORDER = (*WIDGET_KEYS[:3], CHAT_KEYS[0], *CHAT_KEYS[1:], *WIDGET_KEYS[3:], *APP_KEYS)

PROBLEM_KEYS = (  # the screen shown while the index cannot answer
    Key("i", "index_folder", "Index a folder", "index a folder"),
    Key("o", "switch_database", "Open another database", "open another database"),
    Key(QUIT.keys, "app.quit", QUIT.label, QUIT.help),
)
HELP_SCREEN_KEYS = (Key("escape,f1,q,question_mark", "dismiss", "Close", "close this help"),)
CONFIRM_KEYS = (
    Key("y", "answer(True)", "Yes", "yes"),
    Key("n,escape", "answer(False)", "No", "no"),
)
TEXT_PROMPT_KEYS = (Key("escape", "cancel", "Cancel", "cancel"),)


def bindings(keys: tuple[Key, ...]) -> list[Binding]:
    return [key.binding() for key in keys]


def shortcut(action: str, keys: tuple[Key, ...] = (*CHAT_KEYS, *APP_KEYS, *WIDGET_KEYS)) -> str:
    """The key of `action` among `keys` as the help shows it (`Ctrl+N`, `i`), for palette
    hints and the words of a screen (the problem screen's hints)."""
    for key in keys:
        if key.action == action:
            return key.display
    raise KeyError(action)
