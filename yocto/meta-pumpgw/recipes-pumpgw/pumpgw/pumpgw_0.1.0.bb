SUMMARY = "pumpgw: bedside gateway for smart infusion pumps"
DESCRIPTION = "The pumpgwd daemon (pump link over serial, independent \
               dose-error-reduction cross-check, signed drug library, tamper-evident \
               event log synced over MQTT) and the pumpgw-terminal touchscreen on DRM/KMS."
# Checked without network in CI, so not pinged.
# nooelint: oelint.vars.homepageping
HOMEPAGE = "https://example.invalid/pumpgw"
BUGTRACKER = "https://example.invalid/pumpgw/issues"
SECTION = "console/utils"
# The daemon and its tools are Apache-2.0; the touchscreen is GPL-3.0-only
# (Slint's licence for embedded use).
LICENSE = "Apache-2.0 & GPL-3.0-only"
LICENSE:${PN} = "Apache-2.0"
LICENSE:${PN}-sim = "Apache-2.0"
LICENSE:${PN}-terminal = "GPL-3.0-only"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57 \
                    file://ui/LICENSE;md5=1ebbd3e34237af26da5dc08a4e440464"

# Slint's DRM/KMS backend: libinput and libudev for the touchscreen,
# xkbcommon for keys. SQLite is built in (rusqlite's bundled feature).
DEPENDS = "libinput libxkbcommon udev"

# A release sets PV and SRCREV together (docs/yocto.md); never AUTOREV.
SRC_URI = "git://example.invalid/pumpgw.git;protocol=https;branch=main"
SRCREV = "69631180cd5e6ae2984f9f42ece8d0d0660e6563"

S = "${WORKDIR}/git"

inherit cargo cargo-update-recipe-crates pkgconfig systemd useradd

require ${BPN}-crates.inc

# The workspace's root manifest; both packages are built from it.
CARGO_SRC_DIR = ""

do_compile() {
    oe_cargo_build -p pumpgw-daemon --bins
    oe_cargo_build -p pumpgw-terminal --bins --features kms
}

do_install:append() {
    install -d ${D}${systemd_system_unitdir} ${D}${sysconfdir}/pumpgw
    install -m 0644 ${S}/systemd/pumpgwd.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/systemd/pumpgw-terminal.service ${D}${systemd_system_unitdir}/
    install -D -m 0644 ${S}/systemd/pumpgw.sysusers ${D}${nonarch_libdir}/sysusers.d/pumpgw.conf
    install -D -m 0644 ${S}/systemd/pumpgw.tmpfiles ${D}${nonarch_libdir}/tmpfiles.d/pumpgw.conf
    install -D -m 0644 ${S}/systemd/70-pumpgw-terminal.rules \
        ${D}${nonarch_base_libdir}/udev/rules.d/70-pumpgw-terminal.rules
    install -m 0644 ${S}/config/gateway.example.toml ${D}${sysconfdir}/pumpgw/gateway.toml
    install -d ${D}${docdir}/${BPN}
    install -m 0644 ${S}/docs/operations.md ${S}/docs/configuration.md \
        ${S}/docs/terminal.md ${D}${docdir}/${BPN}/
}

PACKAGES =+ "${PN}-terminal ${PN}-sim"

FILES:${PN} += "\
    ${nonarch_libdir}/sysusers.d/pumpgw.conf \
    ${nonarch_libdir}/tmpfiles.d/pumpgw.conf \
"
FILES:${PN}-terminal += "\
    ${bindir}/pumpgw-terminal \
    ${systemd_system_unitdir}/pumpgw-terminal.service \
    ${nonarch_base_libdir}/udev/rules.d/70-pumpgw-terminal.rules \
"
FILES:${PN}-sim += "${bindir}/pump-sim"

# The gateway's config is the biomedical engineer's: an upgrade keeps it.
CONFFILES:${PN} = "${sysconfdir}/pumpgw/gateway.toml"

RDEPENDS:${PN}-terminal = "liberation-fonts"
RRECOMMENDS:${PN}-terminal = "${PN}"

SYSTEMD_PACKAGES = "${PN} ${PN}-terminal"
SYSTEMD_SERVICE:${PN} = "pumpgwd.service"
SYSTEMD_SERVICE:${PN}-terminal = "pumpgw-terminal.service"
SYSTEMD_AUTO_ENABLE = "enable"

# The same users and groups as systemd/pumpgw.sysusers, made at image
# build time so the image's files can belong to them.
USERADD_PACKAGES = "${PN} ${PN}-terminal"
GROUPADD_PARAM:${PN} = "--system pumpgw-terminal"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/pumpgw --no-create-home \
                       --shell /sbin/nologin --user-group --groups dialout,pumpgw-terminal pumpgw"
GROUPADD_PARAM:${PN}-terminal = "--system pumpgw-terminal"
USERADD_PARAM:${PN}-terminal = "--system --home-dir /nonexistent --no-create-home \
                                --shell /sbin/nologin --gid pumpgw-terminal --groups video,render,input pumpgw-terminal"

CVE_PRODUCT = "pumpgw"
