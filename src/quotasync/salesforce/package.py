"""quotasync's org package (`src/quotasync/org-package/`, Salesforce DX source format, shipped in
the wheel as package data) made into the zip the Metadata API deploys (metadata format), as
`sf project convert source` would; and the zip that deletes it again (`destructive`).

Source format keeps one file per field (`objects/Activity/fields/QS_Opens__c.field-meta.xml`);
metadata format wants each object's fields inside one `objects/Activity.object`. Classes and
triggers keep their names; other components lose the `-meta.xml` suffix. The manifest
(`manifest/package.xml`) becomes the zip's `package.xml`.

The Remote Site Setting ships with a placeholder URL: `build` puts the customer's quotasync
address (scheme, host and port: a Remote Site is an origin) in its place, so the org's callouts
may reach it.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

NS = "http://soap.sforce.com/2006/04/metadata"
_Q = f"{{{NS}}}"
# The package as installed quotasync holds it (package data: a checkout's and a wheel's alike).
DEFAULT_DIR = Path(str(resources.files("quotasync").joinpath("org-package")))
SOURCE = Path("force-app/main/default")
MANIFEST = Path("manifest/package.xml")
PLACEHOLDER_URL = "https://quotasync.example.com"

ET.register_namespace("", NS)

# Source folder -> (metadata type, file suffix in source, suffix in metadata format).
_SIMPLE = {
    "classes": ("ApexClass", ".cls", ".cls"),
    "triggers": ("ApexTrigger", ".trigger", ".trigger"),
    "permissionsets": ("PermissionSet", ".permissionset-meta.xml", ".permissionset"),
    "remoteSiteSettings": ("RemoteSiteSetting", ".remoteSite-meta.xml", ".remoteSite"),
}


class PackageError(ValueError):
    """The package's source is not what it should be (a missing folder, unreadable XML)."""


@dataclass(frozen=True)
class Component:
    """One component: its metadata type and full name (`Activity.QS_Opens__c` for a field)."""

    type: str
    name: str


def components(root: Path = DEFAULT_DIR) -> list[Component]:
    """Every component in the package's source, sorted."""
    found: list[Component] = []
    base = _source(root)
    for folder, (kind, suffix, _) in _SIMPLE.items():
        for path in sorted((base / folder).glob(f"*{suffix}")):
            found.append(Component(kind, path.name.removesuffix(suffix)))
    for obj in sorted(p for p in (base / "objects").iterdir() if p.is_dir()):
        if (obj / f"{obj.name}.object-meta.xml").exists():
            found.append(Component("CustomObject", obj.name))
        for field in sorted((obj / "fields").glob("*.field-meta.xml")):
            name = field.name.removesuffix(".field-meta.xml")
            found.append(Component("CustomField", f"{obj.name}.{name}"))
    return sorted(found, key=lambda c: (c.type, c.name))


def manifest(root: Path = DEFAULT_DIR) -> list[Component]:
    """The components `manifest/package.xml` names, sorted."""
    return sorted(listed(_read(root / MANIFEST)), key=lambda c: (c.type, c.name))


def listed(package_xml: bytes) -> Iterator[Component]:
    """The components a package.xml names."""
    tree = _parse(package_xml, "package.xml")
    for types in tree.findall(f"{_Q}types"):
        kind = (types.findtext(f"{_Q}name") or "").strip()
        for member in types.findall(f"{_Q}members"):
            yield Component(kind, (member.text or "").strip())


def build(root: Path = DEFAULT_DIR, callback_url: str | None = None) -> bytes:
    """The deployable zip (metadata format), with the Remote Site pointing at `callback_url`'s
    origin (kept as the placeholder when None)."""
    base = _source(root)
    files: dict[str, bytes] = {"package.xml": _read(root / MANIFEST)}
    for folder, (_, suffix, target) in _SIMPLE.items():
        for path in sorted((base / folder).glob(f"*{suffix}")):
            name = path.name.removesuffix(suffix)
            data = _read(path)
            if folder == "remoteSiteSettings" and callback_url is not None:
                data = _with_url(data, origin(callback_url))
            files[f"{folder}/{name}{target}"] = data
            meta = path.with_name(path.name + "-meta.xml")
            if meta.exists():  # a class's or trigger's own -meta.xml
                files[f"{folder}/{name}{target}-meta.xml"] = _read(meta)
    for obj in sorted(p for p in (base / "objects").iterdir() if p.is_dir()):
        files[f"objects/{obj.name}.object"] = _object_file(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return out.getvalue()


def destructive(root: Path = DEFAULT_DIR) -> bytes:
    """The zip that deletes what the package installs: `destructiveChanges.xml` naming its
    components beside a `package.xml` that names none, as Salesforce documents. A custom
    object's own fields go with it, so only the fields on other objects are named."""
    version = ET.fromstring(_read(root / MANIFEST)).findtext(f"{_Q}version") or ""
    named = components(root)
    objects = {c.name for c in named if c.type == "CustomObject"}
    gone = [
        c for c in named if not (c.type == "CustomField" and c.name.partition(".")[0] in objects)
    ]
    files = {
        "package.xml": _manifest([], version),
        "destructiveChanges.xml": _manifest(gone, None),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return out.getvalue()


def _manifest(named: list[Component], version: str | None) -> bytes:
    root = ET.Element(f"{_Q}Package")
    by_type: dict[str, list[str]] = {}
    for component in named:
        by_type.setdefault(component.type, []).append(component.name)
    for kind, names in sorted(by_type.items()):
        types = ET.SubElement(root, f"{_Q}types")
        for name in names:
            ET.SubElement(types, f"{_Q}members").text = name
        ET.SubElement(types, f"{_Q}name").text = kind
    if version:
        ET.SubElement(root, f"{_Q}version").text = version
    return _xml(root)


def origin(url: str) -> str:
    """A URL's scheme, host and port: what a Remote Site Setting names. ValueError for anything
    but an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _object_file(folder: Path) -> bytes:
    """One `.object` file: the object's own definition (none for a standard object such as
    Activity) with each of its fields as a `<fields>` element."""
    own = folder / f"{folder.name}.object-meta.xml"
    root = _parse(_read(own), str(own)) if own.exists() else ET.Element(f"{_Q}CustomObject")
    # The Metadata API reads elements in its schema's order (alphabetical): the fields go after
    # enableStreamingApi and before label, or the file is refused as "invalid at this location".
    later = [i for i, child in enumerate(root) if child.tag.removeprefix(_Q) > "fields"]
    at = later[0] if later else len(root)
    for offset, path in enumerate(sorted((folder / "fields").glob("*.field-meta.xml"))):
        field = _parse(_read(path), str(path))
        field.tag = f"{_Q}fields"
        root.insert(at + offset, field)
    return _xml(root)


def _with_url(data: bytes, url: str) -> bytes:
    root = _parse(data, "remote site")
    element = root.find(f"{_Q}url")
    if element is None:
        element = ET.SubElement(root, f"{_Q}url")
    element.text = url
    return _xml(root)


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space="    ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _parse(data: bytes, where: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise PackageError(f"{where}: not XML: {exc}") from None


def _source(root: Path) -> Path:
    base = root / SOURCE
    if not (base / "objects").is_dir():
        raise PackageError(f"{root} is not quotasync's org package (no {SOURCE}/objects)")
    return base


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {exc.strerror or exc}") from None
