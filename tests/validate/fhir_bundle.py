"""Validates a FHIR R4 Bundle pumpgw writes with fhir.resources (its R4B
models, which pumpgw did not write), plus the FHIRPath invariants that
apply and that fhir.resources does not evaluate:

- bdl-7: a fullUrl appears once in a Bundle;
- mad-1 (MedicationAdministration.dosage): SHALL have at least one of
  dosage.dose or dosage.rate[x];
- every reference inside the Bundle resolves to one of its entries.

Usage: fhir_bundle.py FILE  Prints one JSON line: the count of each
resource type and what the tests look at; exits 1 with the validator's
words when the Bundle is refused.
"""

import json
import sys

from fhir.resources.R4B.bundle import Bundle


def references(value, found):
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            found.append(ref)
        for v in value.values():
            references(v, found)
    elif isinstance(value, list):
        for v in value:
            references(v, found)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        bundle = Bundle.model_validate_json(text)
    except Exception as e:  # the validator's own words
        print(f"refused by fhir.resources (R4B): {e}", file=sys.stderr)
        sys.exit(1)
    raw = json.loads(text)
    urls = [e["fullUrl"] for e in raw.get("entry", [])]
    if len(urls) != len(set(urls)):
        print("bdl-7: a fullUrl appears twice", file=sys.stderr)
        sys.exit(1)
    local = {f'{e["resource"]["resourceType"]}/{e["resource"]["id"]}' for e in raw["entry"]}
    counts, administrations = {}, []
    for e in raw["entry"]:
        r = e["resource"]
        counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
        if r["resourceType"] == "MedicationAdministration":
            d = r.get("dosage")
            if d is not None and not ("dose" in d or any(k.startswith("rate") for k in d)):
                print(f'mad-1: {r["id"]} has a dosage without dose or rate', file=sys.stderr)
                sys.exit(1)
            administrations.append(r)
        found = []
        references(r, found)
        for ref in found:
            if ref not in local:
                print(f'{r["id"]}: reference {ref} is not in the Bundle', file=sys.stderr)
                sys.exit(1)
    print(json.dumps({
        "type": bundle.type,
        "counts": counts,
        "administrations": administrations,
        "provenance": [e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Provenance"],
    }))


if __name__ == "__main__":
    main()
