"""An uploaded office document (DOCX, ODT) is checked as the package it claims to be, with the
standard library's `zipfile` and `xml.parsers.expat`, before anything is stored.

A ZIP whose central directory lists `[Content_Types].xml` and `word/document.xml` is not yet a
DOCX: those are names. `inspect_package` reads the archive's directory (nothing decompressed),
then only the few small XML parts that say what the package is, and refuses, naming the rule:

- `office_package_too_large` — more than `MAX_ENTRIES` entries, a total uncompressed size over
  `MAX_TOTAL_UNCOMPRESSED`, or an entry that expands more than `MAX_RATIO` times its compressed
  size (a zip bomb: a few kilobytes on disk, a gigabyte once opened). The sizes are the ones the
  directory declares; `zipfile` stops reading an entry at its declared size and fails on a CRC
  mismatch, so an entry lying about its size is never decompressed past the limit either;
- `office_package_invalid` — not a package: the required parts missing or not well-formed XML
  (`[Content_Types].xml`, `_rels/.rels` and the main document for a DOCX; the stored `mimetype`,
  `META-INF/manifest.xml` and `content.xml` for an ODT), the main part not declared with the
  document's content type, a DTD declaration (ECMA-376 Part 2 forbids them in a package; it also
  rules out entity expansion), an encrypted, duplicated or path-escaping entry;
- `office_package_macro` — executable content: a VBA project (`vbaProject.bin`), a macro-enabled
  content type (`…macroEnabled…`, `application/vnd.ms-office.vbaProject`), ActiveX controls,
  legacy OLE objects (`oleObject*.bin`: an OLE « Package » object carries any file, an .exe
  included, opened by a double click), any entry with an executable or script extension
  (.exe, .dll, .js, .vbs, .ps1, .bat…), and for an ODT the `Basic/` and `Scripts/` folders.
  A document with macros or embedded objects is refused rather than cleaned (choice: Usine
  stores files as they were filed, with their SHA-256); PDF remains the format to send.

Pure: bytes in, a content type out or a `RuleViolation` (field `file`)."""
from __future__ import annotations

import io
import posixpath
import zipfile
from xml.parsers import expat

from rules.errors import RuleViolation

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
OFFICE_DOCUMENT_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
STRICT_OFFICE_DOCUMENT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"

MIB = 1024 * 1024
MAX_ENTRIES = 1000
MAX_TOTAL_UNCOMPRESSED = 100 * MIB
MAX_RATIO = 100
# A small entry may compress very well (an empty style sheet) without harm: the ratio is checked
# from this uncompressed size up.
RATIO_FLOOR = 1 * MIB
MAX_XML_PART = 32 * MIB

EXECUTABLE_EXTENSIONS = frozenset({
    ".exe", ".dll", ".com", ".scr", ".msi", ".msp", ".cpl", ".sys", ".drv", ".ocx", ".so", ".dylib",
    ".js", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".hta", ".ps1", ".psm1", ".bat", ".cmd", ".sh",
    ".jar", ".class", ".lnk", ".pif", ".reg", ".py", ".pl",
})
MACRO_CONTENT_MARKERS = ("macroenabled", "vbaproject", "vbadata", "activex", "oleobject")


def _refuse(rule: str, message: str) -> RuleViolation:
    return RuleViolation(rule, f"file : {message}", field="file")


def claims_office(names: set[str]) -> bool:
    return "[Content_Types].xml" in names or "mimetype" in names


def inspect_package(content: bytes) -> str | None:
    """The content type of a valid DOCX or ODT; None for a ZIP that does not claim to be one
    (the caller then refuses the type); `RuleViolation` for one that claims to and is not."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise _refuse("office_package_too_large",
                          f"l'archive contient {len(infos)} fichiers ({MAX_ENTRIES} au plus pour un document).")
        names = [i.filename for i in infos]
        if not claims_office(set(names)):
            return None
        _check_entries(infos)
        if "[Content_Types].xml" in names:
            return _check_ooxml(zf, set(names))
        return _check_odt(zf, infos)


def _check_entries(infos: list[zipfile.ZipInfo]) -> None:
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        lowered = name.lower()
        if lowered in seen:
            raise _refuse("office_package_invalid", f"l'archive contient deux fois « {name} ».")
        seen.add(lowered)
        normal = posixpath.normpath(name)
        if name.startswith("/") or "\\" in name or normal == ".." or normal.startswith("../"):
            raise _refuse("office_package_invalid", f"nom d'élément invalide dans l'archive : « {name} ».")
        if info.flag_bits & 0x1:
            raise _refuse("office_package_invalid", f"l'élément « {name} » est chiffré.")
        total += info.file_size
        if total > MAX_TOTAL_UNCOMPRESSED:
            raise _refuse("office_package_too_large",
                          f"une fois décompressé, le document dépasserait {MAX_TOTAL_UNCOMPRESSED // MIB} Mo "
                          f"(archive piégée, « zip bomb »).")
        if info.file_size >= RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise _refuse("office_package_too_large",
                          f"l'élément « {name} » se décompresse {ratio} fois sa taille ({MAX_RATIO} fois au plus : "
                          f"archive piégée, « zip bomb »).")
        extension = posixpath.splitext(lowered)[1]
        base = posixpath.basename(lowered)
        if extension in EXECUTABLE_EXTENSIONS:
            raise _refuse("office_package_macro", f"l'archive contient un programme ou un script : « {name} ».")
        if base.startswith(("vbaproject", "vbadata")) or base.startswith("activex") \
                or (base.startswith("oleobject") and extension == ".bin"):
            raise _refuse("office_package_macro",
                          f"le document contient des macros ou un objet incorporé exécutable (« {name} ») : "
                          f"enregistrez-le sans macros ni objets incorporés, ou en PDF.")


def _read_xml(zf: zipfile.ZipFile, name: str, collect=None) -> None:
    """Parse one part with expat (no DTD allowed), streaming, never past its declared size."""
    info = zf.getinfo(name)
    if info.file_size > MAX_XML_PART:
        raise _refuse("office_package_too_large", f"l'élément « {name} » est trop volumineux.")
    parser = expat.ParserCreate(namespace_separator=" ")

    def doctype(*_args):
        raise _refuse("office_package_invalid", f"« {name} » contient une déclaration DTD, interdite dans un document.")

    parser.StartDoctypeDeclHandler = doctype
    if collect is not None:
        parser.StartElementHandler = collect
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(256 * 1024)
                parser.Parse(chunk, not chunk)
                if not chunk:
                    break
    except expat.ExpatError as exc:
        raise _refuse("office_package_invalid", f"« {name} » n'est pas un XML bien formé ({exc}).") from None
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise _refuse("office_package_invalid", f"« {name} » est illisible dans l'archive ({exc}).") from None


def _local(tag: str) -> str:
    return tag.rsplit(" ", 1)[-1]


def _check_ooxml(zf: zipfile.ZipFile, names: set[str]) -> str | None:
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}

    def content_types(tag, attrs):
        if _local(tag) == "Default":
            defaults[attrs.get("Extension", "").lower()] = attrs.get("ContentType", "")
        elif _local(tag) == "Override":
            overrides[attrs.get("PartName", "").lstrip("/").lower()] = attrs.get("ContentType", "")

    _read_xml(zf, "[Content_Types].xml", content_types)
    declared = [t.lower() for t in [*defaults.values(), *overrides.values()]]
    marker = next((m for m in MACRO_CONTENT_MARKERS for t in declared if m in t), None)
    if marker is not None:
        raise _refuse("office_package_macro", "le document déclare des macros ou des objets exécutables "
                                              "(type de contenu « " + next(t for t in declared if marker in t) + " ») : "
                                              "enregistrez-le sans macros (.docx), ou en PDF.")
    if "_rels/.rels" not in names:
        raise _refuse("office_package_invalid", "ce n'est pas un document Word valide : « _rels/.rels » manque.")
    targets: list[str] = []

    def relationships(tag, attrs):
        if _local(tag) == "Relationship" and attrs.get("Type") in (OFFICE_DOCUMENT_REL, STRICT_OFFICE_DOCUMENT_REL) \
                and attrs.get("TargetMode", "Internal") == "Internal":
            targets.append(attrs.get("Target", ""))

    _read_xml(zf, "_rels/.rels", relationships)
    if len(targets) != 1:
        raise _refuse("office_package_invalid",
                      "ce n'est pas un document Word valide : aucune partie principale déclarée dans « _rels/.rels ».")
    main = posixpath.normpath(targets[0].lstrip("/"))
    actual = {n.lower(): n for n in names}
    if main.lower() not in actual:
        raise _refuse("office_package_invalid", f"ce n'est pas un document Word valide : la partie principale "
                                                f"« {main} » manque.")
    main_type = overrides.get(main.lower()) or defaults.get(posixpath.splitext(main)[1].lstrip(".").lower(), "")
    if not main_type:
        raise _refuse("office_package_invalid", f"ce n'est pas un document Word valide : « [Content_Types].xml » ne "
                                                f"déclare pas le type de la partie principale « {main} ».")
    if main_type != DOCX_MAIN:
        # An XLSX, a PPTX or anything else: not a type Usine accepts.
        return None
    _read_xml(zf, actual[main.lower()])
    return DOCX


def _check_odt(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    first = infos[0]
    if first.filename != "mimetype" or first.compress_type != zipfile.ZIP_STORED or first.file_size > 100:
        raise _refuse("office_package_invalid", "ce n'est pas un document OpenDocument valide : « mimetype » doit "
                                                "être le premier élément, non compressé.")
    if zf.read(first).strip() != ODT.encode("ascii"):
        return None  # another OpenDocument type (spreadsheet, presentation): not accepted
    names = {i.filename for i in infos}
    for required in ("META-INF/manifest.xml", "content.xml"):
        if required not in names:
            raise _refuse("office_package_invalid", f"ce n'est pas un document OpenDocument valide : « {required} » manque.")
    for name in names:
        if name.startswith(("Basic/", "Scripts/")):
            raise _refuse("office_package_macro", f"le document contient des macros (« {name} ») : "
                                                  f"enregistrez-le sans macros, ou en PDF.")
    _read_xml(zf, "META-INF/manifest.xml")
    _read_xml(zf, "content.xml")
    return ODT
