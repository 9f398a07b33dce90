"""Office documents built in the tests with the standard library: a real minimal DOCX and ODT
(the parts a word processor needs to open them), and the archives that only pretend to be one."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "{extra}</Types>")
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>')
DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    '<w:p><w:r><w:t>Rapport de diagnostic — Atelier Garonne SAS</w:t></w:r></w:p></w:body></w:document>')

ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
ODT_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    '</manifest:manifest>')
ODT_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
    '<office:body><office:text><text:p>Plan d\'action</text:p></office:text></office:body></office:document-content>')


def zip_of(members: dict[str, bytes | str], stored_first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        members = dict(members)
        if stored_first:
            zf.writestr(zipfile.ZipInfo(stored_first), members.pop(stored_first), compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def docx(*, extra_types: str = "", extra: dict | None = None, document: str = DOCUMENT,
         content_types: str | None = None) -> bytes:
    members = {"[Content_Types].xml": content_types or CONTENT_TYPES.format(extra=extra_types),
               "_rels/.rels": RELS, "word/document.xml": document}
    members.update(extra or {})
    return zip_of(members)


def odt(extra: dict | None = None) -> bytes:
    members = {"mimetype": ODT_MIMETYPE, "META-INF/manifest.xml": ODT_MANIFEST, "content.xml": ODT_CONTENT}
    members.update(extra or {})
    return zip_of(members, stored_first="mimetype")


def fake_docx() -> bytes:
    """The names a DOCX has, and nothing a DOCX is."""
    return zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})


def zip_bomb_docx(uncompressed_mib: int) -> bytes:
    """A DOCX whose main part expands to `uncompressed_mib` MiB of zeros, in an archive about a
    thousandth of that. The deflate stream is one compressed MiB of zeros repeated (each block
    ends with a full flush, so every block is the same bytes) and the archive is written by hand
    (local headers, central directory): nothing of the expanded size is ever held or written,
    and a 1 GiB bomb takes well under a second to build."""
    mib = bytes(1024 * 1024)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(uncompressed_mib):
        crc = zlib.crc32(mib, crc)
    bomb = block * uncompressed_mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    small = [(name, text.encode("utf-8")) for name, text in (
        ("[Content_Types].xml", CONTENT_TYPES.format(extra="")), ("_rels/.rels", RELS))]
    entries = [(name, zlib.crc32(data), len(data), _raw_deflate(data)) for name, data in small]
    entries.append(("word/document.xml", crc, uncompressed_mib * len(mib), bomb))
    return _raw_zip(entries)


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _raw_zip(entries) -> bytes:
    """A ZIP (deflated entries, no ZIP64) from (name, crc32, uncompressed size, deflate data)."""
    out, central = bytearray(), bytearray()
    for name, crc, size, data in entries:
        raw = name.encode("utf-8")
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw), 0) + raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)
