"""EPUB e-books: the spine's XHTML documents in reading order, under chapter titles.

An EPUB is a zip with an OPF package file naming the reading order (spine) and a table
of contents (EPUB 3 nav document or EPUB 2 NCX). It is read with zipfile, lxml (safe
parser: no entities, DTDs or network) and the HTML parser gritdesk already has, rather
than EbookLib, whose AGPL licence does not suit an app. Each spine document with text is
a chapter: its blocks carry the locator "chapter N" (1-based among the documents with
text) and sit under the chapter's title from the table of contents (else its first
heading), followed by the headings inside it.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from urllib.parse import unquote, urldefrag

from gritdesk.ingest.decode_text import decode_text
from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile
from gritdesk.ingest.formats import BlockBudget
from gritdesk.ingest.formats.html import parse_html
from gritdesk.ingest.formats.packages import check_package

_OPF = "http://www.idpf.org/2007/opf"
_CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
_NCX = "http://www.daisy.org/z3986/2005/ncx/"
_XHTML = "http://www.w3.org/1999/xhtml"
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")


def chapter_locator(number: int) -> str:
    return f"chapter {number}"


def parse_epub(
    data: bytes, budget: BlockBudget | None = None, max_inflated_bytes: int | None = None
) -> ParsedDocument:
    check_package(data, "EPUB", max_inflated_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            _refuse_drm(book)
            opf_path = _package_path(book)
            spine, titles = _spine_and_titles(book, opf_path)
            documents = [(href, book.read(href)) for href in spine]
    except (SkipFile, MemoryError, RecursionError):
        raise
    except Exception as exc:  # BadZipFile, KeyError (a missing part), XMLSyntaxError
        raise ParseFailure(f"cannot read EPUB: {type(exc).__name__}: {exc}") from exc

    blocks: list[Block] = []
    chapter = 0
    for href, raw in documents:
        text = decode_text(raw)
        inner = [b for b in parse_html(text).blocks if b.text.strip()]
        if inner and not inner[0].heading_path and inner[0].text == _html_title(text):
            inner = inner[1:]  # the <head> title: a file label, not part of the chapter
        if not inner:
            continue
        chapter += 1
        title = titles.get(href) or next((b.text for b in inner if b.is_heading), "")
        locator = chapter_locator(chapter)
        made = []
        for block in inner:
            path = block.heading_path
            if title and path[:1] != (title,):
                path = (title, *path)
            made.append(
                Block(
                    block.text,
                    None,
                    heading_path=path,
                    is_heading=block.is_heading,
                    locator=locator,
                )
            )
        if budget is not None:
            budget.add(made)
        blocks.extend(made)
    return ParsedDocument("epub", blocks)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(text: str) -> str:
    match = _TITLE.search(text[:65536])
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", match.group(1))).split()) if match else ""


def _xml(raw: bytes):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(raw, parser)


def _refuse_drm(book: zipfile.ZipFile) -> None:
    try:
        encryption = book.read("META-INF/encryption.xml")
    except KeyError:
        return
    algorithms = {
        method.get("Algorithm", "") for method in _xml(encryption).iter("{*}EncryptionMethod")
    }
    if algorithms - set(_FONT_OBFUSCATION):
        raise SkipFile("DRM-protected EPUB (encrypted; gritdesk cannot read it)")


def _package_path(book: zipfile.ZipFile) -> str:
    container = _xml(book.read("META-INF/container.xml"))
    rootfile = container.find(f".//{{{_CONTAINER}}}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise ParseFailure("cannot read EPUB: META-INF/container.xml names no package file")
    return rootfile.get("full-path")


def _resolve(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(urldefrag(href)[0])))


def _spine_and_titles(book: zipfile.ZipFile, opf_path: str) -> tuple[list[str], dict[str, str]]:
    """The spine's document paths in reading order, and chapter titles by document path."""
    package = _xml(book.read(opf_path))
    items = {item.get("id"): item for item in package.iter(f"{{{_OPF}}}item") if item.get("href")}
    spine_element = package.find(f"{{{_OPF}}}spine")
    spine = []
    for ref in package.iter(f"{{{_OPF}}}itemref"):
        item = items.get(ref.get("idref"))
        if item is not None and "html" in (item.get("media-type") or ""):
            spine.append(_resolve(opf_path, item.get("href")))
    titles: dict[str, str] = {}
    nav = next((i for i in items.values() if "nav" in (i.get("properties") or "").split()), None)
    if nav is not None:
        nav_path = _resolve(opf_path, nav.get("href"))
        for link in _xml(book.read(nav_path)).iter(f"{{{_XHTML}}}a"):
            text = " ".join("".join(link.itertext()).split())
            if text and link.get("href"):
                titles.setdefault(_resolve(nav_path, link.get("href")), text)
    ncx = items.get(spine_element.get("toc")) if spine_element is not None else None
    if ncx is not None and not titles:
        ncx_path = _resolve(opf_path, ncx.get("href"))
        for point in _xml(book.read(ncx_path)).iter(f"{{{_NCX}}}navPoint"):
            label = point.find(f"{{{_NCX}}}navLabel/{{{_NCX}}}text")
            content = point.find(f"{{{_NCX}}}content")
            if label is not None and content is not None and content.get("src"):
                text = " ".join("".join(label.itertext()).split())
                if text:
                    titles.setdefault(_resolve(ncx_path, content.get("src")), text)
    return spine, titles
