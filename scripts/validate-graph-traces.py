#!/usr/bin/env python3
"""Checks every Graph exchange traced into a directory (the GRAPH_TRACE_DIR of a test run)
against Microsoft Graph v1.0's published schema (CSDL).

Each trace file holds one request to the Graph emulator and its answer: method, URL (relative to
/v1.0), status, request body and response body; a $batch holds its parts. A file with a "type"
instead holds a document the emulator sent (a change notification collection posted to a
subscriber) and is checked as a value of that schema type. The URL is resolved
against the schema (entity sets, navigation properties, keys, bound functions such as delta) to
the type it addresses, and then every JSON property of the request body (what a client sent) and
of the response body (what the emulator answered) must exist on that type, or on its base types,
with a compatible JSON type: strings for Edm.String, ISO 8601 for Edm.DateTimeOffset, arrays for
collections, objects of the right complex type, enumeration members, null only where nullable.
Error answers must have Graph's error shape. The body of a request the emulator refused with 400 is
not checked: the emulator itself refused it for breaking the schema (tests send such bodies on
purpose), and the client that sent it saw the failure.

The schema is expected at ../shared/graph-schema beside the checkout (override: GRAPH_SCHEMA_DIR).

    scripts/validate-graph-traces.py DIR
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

# Annotations allowed on an object (instance annotations of OData JSON, Graph's delta removal).
OBJECT_ANNOTATIONS = {
    "@odata.etag", "@odata.context", "@odata.type", "@odata.id", "@odata.nextLink",
    "@odata.deltaLink", "@odata.count", "@removed",
}

ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Schema:
    """Types, entity sets and bound functions of a CSDL document, by full name."""

    def __init__(self, path):
        root = ET.parse(path).getroot()
        self.structured = {}  # full name -> dict(base, props{name: (type, nullable)}, nav{name: type})
        self.enums = {}  # full name -> set of members
        self.entity_sets = {}  # name -> Collection(type) / type for singletons
        self.functions = {}  # (name, binding type) -> return type
        self.aliases = {}
        schemas = list(root.iter(EDM + "Schema"))
        for s in schemas:
            if s.get("Alias"):
                self.aliases[s.get("Alias")] = s.get("Namespace")
        for s in schemas:
            ns = s.get("Namespace")
            for kind in ("EntityType", "ComplexType"):
                for t in s.findall(EDM + kind):
                    props = {p.get("Name"): (self.full(p.get("Type"), ns), p.get("Nullable") != "false")
                             for p in t.findall(EDM + "Property")}
                    nav = {p.get("Name"): self.full(p.get("Type"), ns) for p in t.findall(EDM + "NavigationProperty")}
                    base = self.full(t.get("BaseType"), ns) if t.get("BaseType") else None
                    self.structured[f"{ns}.{t.get('Name')}"] = {
                        "base": base, "props": props, "nav": nav,
                        # A property bag: open and declaring nothing (a notification's resourceData).
                        # Open types that declare properties (contact) are still checked strictly.
                        "bag": t.get("OpenType") == "true" and not props and not nav}
            for e in s.findall(EDM + "EnumType"):
                self.enums[f"{ns}.{e.get('Name')}"] = {m.get("Name") for m in e.findall(EDM + "Member")}
            for f in s.findall(EDM + "Function") + s.findall(EDM + "Action"):
                if f.get("IsBound") != "true":
                    continue
                params = f.findall(EDM + "Parameter")
                ret = f.find(EDM + "ReturnType")
                if params and ret is not None:
                    self.functions[(f.get("Name"), self.full(params[0].get("Type"), ns))] = self.full(ret.get("Type"), ns)
            for c in s.findall(EDM + "EntityContainer"):
                for es in c.findall(EDM + "EntitySet"):
                    self.entity_sets[es.get("Name")] = f"Collection({self.full(es.get('EntityType'), ns)})"
                for st in c.findall(EDM + "Singleton"):
                    self.entity_sets[st.get("Name")] = self.full(st.get("Type"), ns)

    def full(self, name, ns):
        """A type name with its namespace spelled out (aliases resolved)."""
        if name is None:
            return None
        m = re.match(r"^Collection\((.*)\)$", name)
        if m:
            return f"Collection({self.full(m.group(1), ns)})"
        if name.startswith("Edm."):
            return name
        head, _, tail = name.rpartition(".")
        if head in self.aliases:
            return f"{self.aliases[head]}.{tail}"
        return name if head else f"{ns}.{name}"

    def lineage(self, type_name):
        """The type and its base types."""
        while type_name:
            t = self.structured.get(type_name)
            if t is None:
                return
            yield type_name, t
            type_name = t["base"]

    def member(self, type_name, prop):
        """('prop', type, nullable) or ('nav', type, True), or None."""
        for _, t in self.lineage(type_name):
            if prop in t["props"]:
                ty, nullable = t["props"][prop]
                return "prop", ty, nullable
            if prop in t["nav"]:
                return "nav", t["nav"][prop], True
        return None

    def derives_from(self, derived, base):
        return any(name == base for name, _ in self.lineage(derived))

    def is_bag(self, type_name):
        """Whether the type is a property bag: open, declaring no property of its own or its bases."""
        lineage = [t for _, t in self.lineage(type_name)]
        return bool(lineage) and lineage[0]["bag"] and all(not t["props"] and not t["nav"] for t in lineage)


def element_type(ty):
    m = re.match(r"^Collection\((.*)\)$", ty)
    return m.group(1) if m else None


class Checker:
    def __init__(self, schema):
        self.schema = schema
        self.errors = []
        self.checked_properties = 0

    def fail(self, where, message):
        self.errors.append(f"{where}: {message}")

    def resolve(self, url):
        """The type a request URL addresses (relative to /v1.0), or None when unknown."""
        path = url.split("?", 1)[0]
        segments = [s for s in path.split("/") if s]
        if not segments:
            return None
        ty = self.schema.entity_sets.get(segments[0])
        if ty is None:
            return None
        for seg in segments[1:]:
            if seg.endswith("()"):
                seg = seg[:-2]  # a function called with empty parentheses
            inner = element_type(ty)
            func = self.schema.functions.get((seg, ty))
            if func:
                ty = func
                continue
            if inner is not None:
                ty = inner  # a key
                continue
            m = self.schema.member(ty, seg)
            if m is None:
                # A bound function on the entity or one of its bases.
                for base, _ in self.schema.lineage(ty):
                    if (seg, base) in self.schema.functions:
                        ty = self.schema.functions[(seg, base)]
                        break
                else:
                    return None
                continue
            ty = m[1]
        return ty

    def value(self, where, ty, nullable, v):
        self.checked_properties += 1
        if v is None:
            if not nullable:
                self.fail(where, f"null for a non-nullable {ty}")
            return
        inner = element_type(ty)
        if inner is not None:
            if not isinstance(v, list):
                self.fail(where, f"expected an array for {ty}, got {type(v).__name__}")
                return
            for i, e in enumerate(v):
                self.value(f"{where}[{i}]", inner, False, e)
            return
        if ty in ("Edm.String",):
            ok = isinstance(v, str)
        elif ty == "Edm.Boolean":
            ok = isinstance(v, bool)
        elif ty in ("Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif ty in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in ("INF", "-INF", "NaN")
        elif ty == "Edm.DateTimeOffset":
            ok = isinstance(v, str) and bool(ISO_DATETIME.match(v))
        elif ty == "Edm.Date":
            ok = isinstance(v, str) and bool(ISO_DATE.match(v))
        elif ty == "Edm.Guid":
            ok = isinstance(v, str) and bool(GUID.match(v))
        elif ty in ("Edm.Binary", "Edm.Duration", "Edm.TimeOfDay", "Edm.Stream"):
            ok = isinstance(v, str)
        elif ty in self.schema.enums:
            ok = isinstance(v, str) and all(p.strip() in self.schema.enums[ty] for p in v.split(","))
        elif ty in self.schema.structured:
            if not isinstance(v, dict):
                self.fail(where, f"expected an object of {ty}, got {type(v).__name__}")
                return
            self.obj(where, ty, v)
            return
        else:
            self.fail(where, f"type {ty} is not in the schema")
            return
        if not ok:
            self.fail(where, f"{json.dumps(v)[:80]} is not a valid {ty}")

    def obj(self, where, ty, o):
        declared = o.get("@odata.type")
        if self.schema.is_bag(ty):
            # An open type (a notification's resourceData) carries the resource's own properties
            # and type: only its declared properties are checked.
            declared = None
        if isinstance(declared, str):
            actual = self.schema.full(declared.lstrip("#"), "microsoft.graph")
            if not self.schema.derives_from(actual, ty):
                self.fail(where, f"@odata.type {declared} is not a {ty}")
                return
            ty = actual
        for key, v in o.items():
            if key.startswith("@"):
                if key not in OBJECT_ANNOTATIONS:
                    self.fail(where, f"unknown annotation {key}")
                continue
            prop = key.split("@", 1)[0]
            m = self.schema.member(ty, prop)
            if m is None:
                if not self.schema.is_bag(ty):
                    self.fail(where, f"property '{prop}' does not exist on {ty}")
                continue
            if "@" in key:
                continue  # a property annotation (e.g. its @odata.context)
            kind, pty, nullable = m
            self.value(f"{where}.{prop}", pty, nullable, v)

    def body(self, where, ty, body, request):
        """A request body or a success answer for a URL of type `ty`."""
        inner = element_type(ty)
        if inner is not None and not request:
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                # A POST to a collection answers the created entity.
                if isinstance(body, dict):
                    self.value(where, inner, False, body)
                else:
                    self.fail(where, "a collection answer without a value array")
                return
            for key in body:
                if key != "value" and key not in OBJECT_ANNOTATIONS:
                    self.fail(where, f"unknown member {key} of a collection answer")
            for i, e in enumerate(body["value"]):
                self.value(f"{where}.value[{i}]", inner, False, e)
            return
        self.value(where, inner or ty, False, body)

    def error_body(self, where, body):
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict) or not isinstance(err.get("code"), str) or not isinstance(err.get("message"), str):
            self.fail(where, "an error answer without error.code and error.message")
            return
        for key in err:
            if key not in ("code", "message", "innerError", "innererror", "details", "target"):
                self.fail(where, f"unknown member error.{key}")

    def exchange(self, where, method, url, status, request, response):
        if url.split("?", 1)[0].rstrip("/") == "/$batch":
            self.batch(where, request, response)
            return
        ty = self.resolve(url)
        if ty is None:
            self.fail(where, f"the URL {url} does not resolve in the schema")
            return
        # A body Graph refused as malformed (400) is a test of the refusal, not a client's request.
        if request is not None and method in ("POST", "PATCH", "PUT") and status != 400:
            self.body(f"{where} request", element_type(ty) or ty, request, True)
        if response is None:
            return
        if status >= 400:
            self.error_body(f"{where} response", response)
        else:
            self.body(f"{where} response", ty, response, False)

    def batch(self, where, request, response):
        parts = (request or {}).get("requests")
        if not isinstance(parts, list):
            self.fail(where, "a $batch without requests")
            return
        answers = {r.get("id"): r for r in (response or {}).get("responses", []) if isinstance(r, dict)}
        for p in parts:
            pid = p.get("id")
            url = p.get("url", "")
            url = url if url.startswith("/") else "/" + url
            a = answers.get(pid, {})
            self.exchange(f"{where} part {pid} ({p.get('method')} {url})", p.get("method", ""), url,
                          int(a.get("status", 0)), p.get("body"), a.get("body"))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    schema_dir = Path(os.environ.get("GRAPH_SCHEMA_DIR", root.parent / "shared" / "graph-schema"))
    csdl = schema_dir / "graph-v1.0-csdl.xml"
    if not csdl.exists():
        print(f"Graph schema not found at {csdl} (set GRAPH_SCHEMA_DIR)", file=sys.stderr)
        return 2
    traces = sorted(Path(sys.argv[1]).glob("**/*.json"))
    if not traces:
        print(f"no Graph exchanges were traced in {sys.argv[1]}: the tests did not talk to the emulator", file=sys.stderr)
        return 1
    checker = Checker(Schema(csdl))
    for t in traces:
        doc = json.loads(t.read_text())
        if "type" in doc:
            # A document the emulator sent (a change notification collection): checked as a value
            # of its schema type.
            checker.value(t.name, doc["type"], False, doc.get("body"))
            continue
        checker.exchange(t.name, doc["method"], doc["url"], doc["status"], doc.get("request"), doc.get("response"))
    for e in checker.errors:
        print(e, file=sys.stderr)
    print(f"{len(traces)} Graph exchanges, {checker.checked_properties} property values checked, "
          f"{len(checker.errors)} violation(s)")
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
