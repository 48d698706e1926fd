//! Serial ports a pump may be on (`pumpgwd ports`, and the ports
//! `pumpgwd provision` offers): what the kernel lists as serial devices,
//! with the USB adapter's maker, product and serial number where there is
//! one, and the stable `/dev/serial/by-id/` names that follow an adapter
//! whichever USB socket it is in.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio_serial::SerialPortType;

/// Where udev keeps the stable names.
pub const BY_ID: &str = "/dev/serial/by-id";

/// One serial device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The kernel's device, e.g. `/dev/ttyUSB0`.
    pub device: PathBuf,
    /// Its stable names, e.g. `/dev/serial/by-id/usb-FTDI_...-port0`.
    pub by_id: Vec<PathBuf>,
    /// What it hangs off.
    pub kind: Kind,
}

impl Candidate {
    /// The path to write in the config: a stable name when there is one.
    pub fn preferred(&self) -> &Path {
        self.by_id.first().unwrap_or(&self.device)
    }
}

/// What a serial device hangs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A USB adapter (most pump cables).
    Usb {
        /// Vendor id.
        vid: u16,
        /// Product id.
        pid: u16,
        /// Maker, as the adapter says.
        manufacturer: Option<String>,
        /// Product, as the adapter says.
        product: Option<String>,
        /// The adapter's serial number: tells two adapters apart.
        serial: Option<String>,
    },
    /// A PCI card.
    Pci,
    /// Bluetooth (RFCOMM): not for pumps.
    Bluetooth,
    /// The board's own UART (e.g. the Raspberry Pi's header pins).
    Board,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Usb {
                vid,
                pid,
                manufacturer,
                product,
                serial,
            } => {
                write!(f, "USB {vid:04x}:{pid:04x}")?;
                for part in [manufacturer, product].into_iter().flatten() {
                    write!(f, " {part}")?;
                }
                if let Some(s) = serial {
                    write!(f, ", serial {s}")?;
                }
                Ok(())
            }
            Kind::Pci => f.write_str("PCI serial card"),
            Kind::Bluetooth => f.write_str("Bluetooth (not for pumps)"),
            Kind::Board => f.write_str("the board's own serial port"),
        }
    }
}

/// Every serial device the kernel lists, with its stable names; in device
/// order. Empty when the kernel lists none (or cannot be asked).
pub fn candidates() -> Vec<Candidate> {
    let links = by_id_links(Path::new(BY_ID));
    let ports = match tokio_serial::available_ports() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list serial ports");
            return Vec::new();
        }
    };
    let mut out: Vec<Candidate> = ports
        .into_iter()
        .map(|p| {
            let device = PathBuf::from(&p.port_name);
            let kind = match p.port_type {
                SerialPortType::UsbPort(u) => Kind::Usb {
                    vid: u.vid,
                    pid: u.pid,
                    manufacturer: u.manufacturer,
                    product: u.product,
                    serial: u.serial_number,
                },
                SerialPortType::PciPort => Kind::Pci,
                SerialPortType::BluetoothPort => Kind::Bluetooth,
                SerialPortType::Unknown => Kind::Board,
            };
            let by_id = device
                .canonicalize()
                .ok()
                .and_then(|c| links.get(&c).cloned())
                .unwrap_or_default();
            Candidate {
                device,
                by_id,
                kind,
            }
        })
        .collect();
    out.sort_by(|a, b| a.device.cmp(&b.device));
    out
}

/// The links in a `by-id` folder, by the device they point to.
pub fn by_id_links(dir: &Path) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut out: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let link = entry.path();
        if let Ok(target) = link.canonicalize() {
            out.entry(target).or_default().push(link);
        }
    }
    for links in out.values_mut() {
        links.sort();
    }
    out
}

/// What is at a port's path now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Nothing: the adapter is unplugged or the path is wrong.
    Missing,
    /// Something that is not a character device (a typo'd file?).
    NotADevice,
    /// A character device, with who may open it.
    Device {
        /// Its group (`dialout` on most boards).
        group: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// Looks at a path without opening it (opening a serial port can reset
/// the pump's controller).
pub fn presence(path: &Path) -> Presence {
    let Ok(meta) = std::fs::metadata(path) else {
        return Presence::Missing;
    };
    if !meta.file_type().is_char_device() {
        return Presence::NotADevice;
    }
    let gid = nix::unistd::Gid::from_raw(meta.gid());
    let group = nix::unistd::Group::from_gid(gid)
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name);
    Presence::Device {
        group,
        mode: meta.permissions().mode() & 0o777,
    }
}

impl std::fmt::Display for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presence::Missing => f.write_str("not there"),
            Presence::NotADevice => f.write_str("not a device"),
            Presence::Device { group, mode } => {
                write!(f, "present, group {group}, mode {mode:04o}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_id_links_are_grouped_by_their_device() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("ttyUSB0");
        std::fs::write(&dev, "").unwrap();
        let by_id = dir.path().join("by-id");
        std::fs::create_dir(&by_id).unwrap();
        std::os::unix::fs::symlink(&dev, by_id.join("usb-b-port0")).unwrap();
        std::os::unix::fs::symlink("../ttyUSB0", by_id.join("usb-a-port0")).unwrap();
        std::os::unix::fs::symlink("../gone", by_id.join("dangling")).unwrap();
        let links = by_id_links(&by_id);
        assert_eq!(links.len(), 1);
        assert_eq!(
            links[&dev.canonicalize().unwrap()],
            vec![by_id.join("usb-a-port0"), by_id.join("usb-b-port0")]
        );
        assert!(by_id_links(&dir.path().join("none")).is_empty());
    }

    #[test]
    fn presence_tells_devices_from_files_and_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(presence(&dir.path().join("ttyUSB9")), Presence::Missing);
        let file = dir.path().join("ttyUSB0");
        std::fs::write(&file, "").unwrap();
        assert_eq!(presence(&file), Presence::NotADevice);
        assert!(matches!(
            presence(Path::new("/dev/null")),
            Presence::Device { mode: 0o666, .. }
        ));
    }

    #[test]
    fn a_usb_adapter_reads_as_an_engineer_writes_it() {
        let k = Kind::Usb {
            vid: 0x0403,
            pid: 0x6001,
            manufacturer: Some("FTDI".into()),
            product: Some("FT232R USB UART".into()),
            serial: Some("A10KXYZ".into()),
        };
        assert_eq!(
            k.to_string(),
            "USB 0403:6001 FTDI FT232R USB UART, serial A10KXYZ"
        );
    }
}
