"""Walking parsed JSON and XML: resources, Bundles (nested), lists and CDS Hooks requests (drafts,
prefetch) become :class:`~checker.fhir_input.raw.RawResource` items or input errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checker.fhir_input.decoding import _Rejected, _xml_to_json
from checker.fhir_input.elements import _s
from checker.fhir_input.errors import _err
from checker.fhir_input.raw import RawResource
from checker.findings import InputError
from checker.model import SourceLocation

_MAX_DEPTH = 8  # nested Bundles / CDS Hooks wrappers


def _from_xml(data: bytes, where: str) -> Iterator[RawResource | InputError]:
    from lxml import etree

    if _DOCTYPE.search(data):
        yield _err(where, "xml-doctype")
        return
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        yield _err(where, "xml-malformed", error=str(exc))
        return
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        yield _err(where, "xml-doctype")
        return
    qname = etree.QName(root)
    if qname.namespace != "http://hl7.org/fhir":
        yield _err(where, "xml-root", root=str(qname.localname))
        return
    resource = _xml_to_json(data, qname.localname, where)
    if isinstance(resource, InputError) and qname.localname == "Bundle":
        yield from _xml_bundle_by_entry(root, where)  # one bad entry must not cost the others
    elif isinstance(resource, InputError):
        yield resource
    else:
        yield from _walk(resource, SourceLocation(file=where), depth=0)


def _xml_bundle_by_entry(bundle: Any, where: str) -> Iterator[RawResource | InputError]:
    """A FHIR XML Bundle that does not convert as a whole, converted entry by entry: each entry that
    converts is read as usual, each one that does not becomes an error at its entry index."""
    from lxml import etree

    ns = "{http://hl7.org/fhir}"
    for i, entry in enumerate(bundle.iterchildren(f"{ns}entry")):
        eloc = SourceLocation(file=where, entry=i, pointer=f"/entry/{i}")
        full_url_el = entry.find(f"{ns}fullUrl")
        full_url = full_url_el.get("value", "") if full_url_el is not None else ""
        wrapper = entry.find(f"{ns}resource")
        children = [c for c in wrapper.iterchildren() if isinstance(c.tag, str)] if wrapper is not None else []
        if not children:
            if entry.find(f"{ns}request") is None and entry.find(f"{ns}response") is None:
                yield _err(str(eloc), "entry-no-resource")
            continue
        child = children[0]
        resource = _xml_to_json(etree.tostring(child), etree.QName(child).localname, str(_at(eloc, "/resource")))
        if isinstance(resource, InputError):
            yield resource
        else:
            yield from _walk({"fullUrl": full_url, "resource": resource} if full_url else resource,
                             eloc if full_url else _at(eloc, "/resource"), depth=1)


_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def _walk(obj: Any, loc: SourceLocation, depth: int, *, draft: bool = False,
          default_patient: str = "", full_url: str = "") -> Iterator[RawResource | InputError]:
    """Yield the resources in ``obj``: a resource, a Bundle, a list, or a CDS Hooks request."""
    if type(obj) is dict:
        rt = obj.get("resourceType")
        if type(rt) is str and rt and rt != "Bundle":  # the hot path: a plain resource
            yield RawResource(obj, loc, full_url=full_url, draft=draft, default_patient=default_patient)
            return
    where = str(loc)
    if type(obj) is _Rejected:
        yield InputError.coded(where, obj.message, obj.resource_type)
        return
    if depth > _MAX_DEPTH:
        yield _err(where, "too-deep")
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _walk(item, _at(loc, f"/{i}"), depth + 1, draft=draft, default_patient=default_patient)
        return
    if not isinstance(obj, dict):
        yield _err(where, "not-object", found=type(obj).__name__)
        return
    rt = obj.get("resourceType")
    if rt is None and isinstance(obj.get("context"), dict) and (
        "hook" in obj or "hookInstance" in obj or "prefetch" in obj or "draftOrders" in obj["context"]
    ):
        yield from _walk_cds_request(obj, loc, depth)
        return
    if rt is None and isinstance(obj.get("resource"), dict):  # Bundle entry / prefetch wrapper
        yield from _walk(obj["resource"], _at(loc, "/resource"), depth + 1, draft=draft,
                         default_patient=default_patient, full_url=_s(obj.get("fullUrl")))
        return
    if not isinstance(rt, str) or not rt:
        yield _err(where, "not-resource")
        return
    if rt == "Bundle":
        yield from _walk_bundle(obj, loc, depth, draft=draft, default_patient=default_patient)
        return
    yield RawResource(obj, loc, full_url=full_url, draft=draft, default_patient=default_patient)


def _walk_bundle(bundle: dict[str, Any], loc: SourceLocation, depth: int, *, draft: bool,
                 default_patient: str) -> Iterator[RawResource | InputError]:
    entries = bundle.get("entry", [])
    if entries is None:
        return
    if not isinstance(entries, list):
        yield _err(str(_at(loc, "/entry")), "entry-not-list")
        return
    for i, entry in enumerate(entries):
        eloc = SourceLocation(file=loc.file, line=loc.line, entry=i, pointer=f"{loc.pointer}/entry/{i}")
        if not isinstance(entry, dict):
            yield _err(str(eloc), "entry-not-object")
            continue
        if "resource" in entry:
            res = entry["resource"]
            if res is None:
                continue  # e.g. a transaction DELETE: no resource to check
            full_url = _s(entry.get("fullUrl"))
            if isinstance(res, dict) and res.get("resourceType") == "Bundle":
                yield from _walk_bundle(res, _at(eloc, "/resource"), depth + 1, draft=draft,
                                        default_patient=default_patient)
            elif isinstance(res, dict):
                yield from _walk(res, _at(eloc, "/resource"), depth + 1, draft=draft,
                                 default_patient=default_patient, full_url=full_url)
            else:
                yield _err(str(eloc), "entry-resource-not-object")
        elif "resourceType" in entry:  # entry written without its `resource` wrapper
            yield from _walk(entry, eloc, depth + 1, draft=draft, default_patient=default_patient)
        elif "request" in entry or "response" in entry or "search" in entry:
            continue  # an entry with no resource (e.g. batch request/response only)
        else:
            yield _err(str(eloc), "entry-no-resource")


def _walk_cds_request(body: dict[str, Any], loc: SourceLocation, depth: int) -> Iterator[RawResource | InputError]:
    context = body.get("context")
    if not isinstance(context, dict):
        yield _err(str(_at(loc, "/context")), "cds-context")
        return
    patient = _s(context.get("patientId"))
    if patient and "/" not in patient:
        patient = f"Patient/{patient}"
    for key in ("draftOrders", "medications", "selections_resources"):
        if key in context and context[key] is not None:
            yield from _walk(context[key], _at(loc, f"/context/{key}"), depth + 1, draft=True, default_patient=patient)
    prefetch = body.get("prefetch")
    where = "/prefetch"
    if prefetch is None and isinstance(context.get("prefetch"), dict):  # seen upstream: prefetch inside context
        prefetch, where = context["prefetch"], "/context/prefetch"
    prefetch = prefetch or {}
    if not isinstance(prefetch, dict):
        yield _err(str(_at(loc, where)), "cds-prefetch")
        return
    items = [(f"{where}/{k}", prefetch[k]) for k in sorted(prefetch)]
    # Prefetch items misplaced among the context keys (seen upstream: context.item2)
    items += [(f"/context/{k}", v) for k, v in sorted(context.items())
              if k not in _CDS_CONTEXT_KEYS and isinstance(v, dict) and ("resource" in v or "resourceType" in v)]
    for pointer, value in items:
        if value is None:
            continue
        yield from _walk(value, _at(loc, pointer), depth + 1, default_patient=patient)


_CDS_CONTEXT_KEYS = frozenset({"userId", "patientId", "encounterId", "selections", "draftOrders", "medications",
                               "selections_resources", "prefetch"})


def _at(loc: SourceLocation, suffix: str) -> SourceLocation:
    return SourceLocation(file=loc.file, line=loc.line, entry=loc.entry, pointer=loc.pointer + suffix)
