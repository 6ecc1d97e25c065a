"""Mail: single messages (.eml) and mailboxes (.mbox), with their attachments.

The stdlib `email` package reads each message (policy.default decodes headers and
charsets). A message's heading is "subject — from, date"; in a mailbox each block
also carries the locator "message N" (1-based, in file order), so a chunk never spans
two messages. Attachments of a kind gritdesk reads (PDF, DOCX, slides, text...) are
parsed too, each under its own locator ("message 2, attachment plan.pdf p3"), at most
MAX_ATTACHMENTS per message and MAX_ATTACHMENT_BYTES each; mail inside mail is not
opened.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from email.message import EmailMessage

from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile, split_lines
from gritdesk.ingest.formats import BlockBudget
from gritdesk.ingest.formats.html import parse_html

# (attachment name, its bytes, the inflation limit) -> its document, or None if not read
AttachmentParser = Callable[[str, bytes, "int | None"], "ParsedDocument | None"]

MAX_MESSAGES = 100_000
MAX_ATTACHMENTS = 10  # per message
MAX_ATTACHMENT_BYTES = 8 * 1024 * 1024
_MAIL_SUFFIXES = (".eml", ".mbox")
_MBOX_SEPARATOR = re.compile(rb"(?m)^From [^\r\n]*\r?\n")
_MBOX_QUOTED_FROM = re.compile(rb"(?m)^>(>*From )")


def message_heading(message: EmailMessage) -> str:
    subject = " ".join(str(message.get("subject", "") or "(no subject)").split())
    sender = " ".join(str(message.get("from", "") or "").split())
    date = " ".join(str(message.get("date", "") or "").split())
    details = ", ".join(part for part in (sender, date) if part)
    return f"{subject} — {details}" if details else subject


def parse_mail(
    data: bytes,
    kind: str,
    budget: BlockBudget | None = None,
    max_inflated_bytes: int | None = None,
    parse_attachment: AttachmentParser | None = None,
) -> ParsedDocument:
    """`kind` is "eml" (one message) or "mbox" (messages split at their `From ` lines).
    `parse_attachment` reads an attachment as a file of its name (`parse.parse_document`
    hands itself in; None leaves attachments out)."""
    if kind == "mbox":
        if not data.startswith(b"From "):
            raise ParseFailure("cannot read MBOX: it does not start with a 'From ' line")
        raw_messages = [
            _MBOX_QUOTED_FROM.sub(rb"\1", part)  # ">From " in a body was "From "
            for part in _MBOX_SEPARATOR.split(data)
            if part.strip()
        ]
        if len(raw_messages) > MAX_MESSAGES:
            raise SkipFile(f"mailbox of over {MAX_MESSAGES} messages")
    else:
        if not _has_headers(data):
            raise ParseFailure("cannot read EML: no mail headers (From:, Subject:) at its start")
        raw_messages = [data]
    blocks: list[Block] = []
    for number, raw in enumerate(raw_messages, 1):
        locator = f"message {number}" if kind == "mbox" else None
        try:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            made = _message_blocks(message, locator, max_inflated_bytes, parse_attachment)
        except (SkipFile, MemoryError, RecursionError):
            raise
        except Exception as exc:
            where = f"message {number}" if kind == "mbox" else "message"
            raise ParseFailure(
                f"cannot read {kind.upper()} {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if budget is not None:
            budget.add(made)
        blocks.extend(made)
    return ParsedDocument(kind, blocks)


def _has_headers(raw: bytes) -> bool:
    head = raw[:8192].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].lower()
    return any(b"\n" + name in b"\n" + head for name in (b"from:", b"subject:", b"date:"))


def _message_blocks(
    message: EmailMessage,
    locator: str | None,
    max_inflated_bytes: int | None,
    parse_attachment: AttachmentParser | None,
) -> list[Block]:

    heading = message_heading(message)
    path = (heading,)
    blocks = [Block(heading, None, heading_path=path, is_heading=True, locator=locator)]
    for name in ("to", "cc"):
        if message.get(name):
            value = " ".join(str(message[name]).split())
            line = f"{name.title()}: {value}"
            blocks.append(Block(line, None, heading_path=path, locator=locator))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        if body.get_content_subtype() == "html":
            lines = [b.text for b in parse_html(content).blocks]
        else:
            lines = split_lines(content)
        blocks += [Block(line, None, heading_path=path, locator=locator) for line in lines]
    attached = 0
    for part in message.iter_attachments() if parse_attachment is not None else ():
        name = part.get_filename() or ""
        if not name or name.lower().endswith(_MAIL_SUFFIXES) or attached >= MAX_ATTACHMENTS:
            continue
        payload = part.get_payload(decode=True) or b""
        if not payload or len(payload) > MAX_ATTACHMENT_BYTES:
            continue
        attached += 1
        document = parse_attachment(name, payload, max_inflated_bytes)
        if document is not None:
            blocks += _attachment_blocks(name, document, path, locator)
    return blocks


def _attachment_blocks(
    name: str, document: ParsedDocument, path: tuple[str, ...], locator: str | None
) -> list[Block]:
    """The attachment's blocks under the message heading."""
    prefix = (f"{locator}, " if locator else "") + f"attachment {name}"
    blocks = []
    for block in document.blocks:
        where = block.locator or (f"p{block.page}" if block.page is not None else None)
        blocks.append(
            Block(
                block.text,
                None,
                heading_path=(*path, *block.heading_path),
                is_heading=block.is_heading,
                locator=f"{prefix} {where}" if where else prefix,
            )
        )
    return blocks
