"""Validates HL7 v2 messages pumpgw sends with two libraries pumpgw did not
write: hl7apy (strict, against the HL7 v2.5 structures) and python-hl7.

Usage: hl7_messages.py FILE...  Each FILE holds one message, segments one
per line or ended by CR. Prints one JSON line per file with what the
validators read (message type, MSA-1, MSA-2, ERR-3, ERR-5); exits 1 with
the validator's words at the first message refused.
"""

import json
import sys

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def check(path):
    with open(path, encoding="utf-8") as f:
        text = f.read().strip().replace("\r\n", "\r").replace("\n", "\r")
    # hl7apy, strict: every segment, field and data type against v2.5.
    msg = parse_message(
        text,
        validation_level=VALIDATION_LEVEL.STRICT,
        find_groups=True,
        force_validation=True,
    )
    msg.validate()
    # python-hl7: an independent reading of the same bytes.
    h = hl7.parse(text)
    read = {
        "file": path,
        "type": str(h.segment("MSH")[9]),
        "msa_1": str(h.segment("MSA")[1]),
        "msa_2": str(h.segment("MSA")[2]),
        "hl7apy_type": msg.msh.msh_9.to_er7(),
    }
    try:
        err = h.segment("ERR")
        read["err_2"] = str(err[2])
        read["err_3"] = str(err[3])
        read["err_5"] = str(err[5]) if len(err) > 5 else ""
    except KeyError:
        pass
    return read


def main():
    for path in sys.argv[1:]:
        try:
            print(json.dumps(check(path)))
        except Exception as e:  # the validator's own words, whatever they are
            print(f"{path}: refused by the validators: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
