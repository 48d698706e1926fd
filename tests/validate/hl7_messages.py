"""Validates HL7 v2 messages pumpgw sends with two libraries pumpgw did not
write: hl7apy (strict, against the structures of the message's own HL7
version, MSH-12: 2.5 for PCD-03 answers, 2.6 for PCD-01 and PCD-10) and
python-hl7.

Usage: hl7_messages.py FILE...  Each FILE holds one message, segments one
per line or ended by CR. Prints one JSON line per file with what the
validators read (message type, version, MSA-1, MSA-2, ERR-3, ERR-5; for
observations OBR-2, OBR-4, PID-3 and each OBX's code, sub-id, value and
unit); exits 1 with the validator's words at the first message refused.
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
        "version": str(h.segment("MSH")[12]),
        "hl7apy_type": msg.msh.msh_9.to_er7(),
    }
    try:
        read["msa_1"] = str(h.segment("MSA")[1])
        read["msa_2"] = str(h.segment("MSA")[2])
    except KeyError:
        pass
    try:
        obr = h.segment("OBR")
        read["obr_2"] = str(obr[2])
        read["obr_4"] = str(obr[4])
        read["obx"] = [
            {"code": str(o[3]), "sub": str(o[4]), "value": str(o[5]), "unit": str(o[6])}
            for o in h.segments("OBX")
        ]
    except KeyError:
        pass
    try:
        read["pid_3"] = str(h.segment("PID")[3])
    except KeyError:
        pass
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
