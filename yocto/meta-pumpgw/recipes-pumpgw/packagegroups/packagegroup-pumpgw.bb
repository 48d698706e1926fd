SUMMARY = "pumpgw bedside gateway: the daemon and its touchscreen"
DESCRIPTION = "Everything a bedside gateway board runs: pumpgwd with its \
               systemd units and the pumpgw-terminal kiosk."
BUGTRACKER = "https://example.invalid/pumpgw/issues"
SECTION = "console/utils"

inherit packagegroup

RDEPENDS:${PN} = "\
    pumpgw \
    pumpgw-terminal \
"
