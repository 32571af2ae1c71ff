//! The screening of a candidate plugin file before anything of it runs: `dlopen` maps a file and
//! runs its initialisers, so a library that is not an `aa` plugin (a copied system library)
//! would run its code in `aa`, and a truncated or foreign ELF file can crash the dynamic loader.
//!
//! [`screen_image`] looks at bytes only: the fixed ELF header (64-bit, little-endian, a shared
//! object for this machine), that the program and section header tables lie inside the file (a
//! truncated copy fails that), and that the dynamic symbol table defines the root-module symbol
//! abi_stable's loader looks up ([`aa_abi::host::ROOT_MODULE_SYMBOL`]). It does no I/O, never
//! panics and does work linear in the dynamic symbol table at most, so it can be fuzzed and
//! run on every candidate on every start. [`screen_file`] maps a file and screens it.
//!
//! This proves intent, not good faith: a file can define the symbol and still be broken, which
//! the probe in a child process catches (see `probe.rs`).

use std::fs::File;
use std::path::Path;

use object::elf::{FileHeader64, SHN_UNDEF, SHT_DYNSYM};
use object::read::elf::{FileHeader, Sym};
use object::LittleEndian;

const ELF_HEADER_LEN: usize = 64;

/// Screens a whole file image; `Err` is the reason, one line.
pub(crate) fn screen_image(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let Some(header) = bytes.first_chunk::<ELF_HEADER_LEN>() else {
        return Err("not a shared library (no ELF header)".into());
    };
    if &header[..4] != b"\x7fELF" {
        return Err("not a shared library (no ELF header)".into());
    }
    check_elf_header(header, bytes.len() as u64)?;
    let symbol = aa_abi::host::ROOT_MODULE_SYMBOL;
    match has_defined_dynamic_symbol(bytes, symbol.as_bytes()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "not an aa plugin (its dynamic symbol table does not define {symbol})"
        )),
        Err(e) => Err(format!("damaged ELF file ({e})")),
    }
}

/// Maps `path` and screens it (see [`screen_image`]).
pub(crate) fn screen_file(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if len == 0 {
        return screen_image(&[]);
    }
    let len = usize::try_from(len).map_err(|_| "too large".to_string())?;
    // A plugin with its debug information is tens of MB, of which the screening touches a few
    // pages: mapping costs nothing for the rest, where reading would cost milliseconds.
    // SAFETY: a fresh private read-only mapping of `len` bytes of an open file, unmapped below
    // before `bytes` goes away. Shrinking the file while it is mapped would raise SIGBUS on a
    // read past its new end; only its owner can do that, who is root or the user running aa
    // (the trust check refuses every other file).
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            &file,
            0,
        )
    };
    let ptr = match ptr {
        Ok(ptr) => ptr,
        // A file system that cannot map files: read it instead.
        Err(_) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
            return screen_image(&bytes);
        }
    };
    // SAFETY: the mapping is `len` readable bytes and lives until the munmap below.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    let verdict = screen_image(bytes);
    // SAFETY: the mapping made above, no longer borrowed.
    let _ = unsafe { rustix::mm::munmap(ptr, len) };
    verdict
}

/// Whether the `SHT_DYNSYM` section defines `name` (as `dlsym` would find it: not undefined).
fn has_defined_dynamic_symbol(bytes: &[u8], name: &[u8]) -> object::read::Result<bool> {
    let header = FileHeader64::<LittleEndian>::parse(bytes)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, bytes)?;
    let symbols = sections.symbols(endian, bytes, SHT_DYNSYM)?;
    for symbol in symbols.iter() {
        if symbol.st_shndx(endian) == SHN_UNDEF {
            continue;
        }
        // A name that cannot be read is another symbol's problem, not a match.
        if symbols.symbol_name(endian, symbol) == Ok(name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Validates the fixed ELF header (64-bit, little-endian, this machine) and that the program
/// and section header tables lie inside the file: a truncated library fails the latter.
fn check_elf_header(h: &[u8; ELF_HEADER_LEN], len: u64) -> Result<(), String> {
    const ELFCLASS64: u8 = 2;
    const ELFDATA2LSB: u8 = 1;
    const ET_DYN: u16 = 3;
    if h[4] != ELFCLASS64 || h[5] != ELFDATA2LSB {
        return Err("not a 64-bit little-endian ELF library".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[o..o + 8]);
        u64::from_le_bytes(b)
    };
    if u16_at(16) != ET_DYN {
        return Err("not a shared library (ELF file of another type)".into());
    }
    if u16_at(18) != host_machine() {
        return Err(format!(
            "built for another machine (ELF machine {})",
            u16_at(18)
        ));
    }
    let tables = [
        ("program headers", u64_at(32), u16_at(54), u16_at(56)),
        ("section headers", u64_at(40), u16_at(58), u16_at(60)),
    ];
    for (what, offset, entry_size, count) in tables {
        let end = offset.saturating_add(u64::from(entry_size) * u64::from(count));
        if end > len {
            return Err(format!(
                "truncated file ({what} end at byte {end}, the file has {len})"
            ));
        }
    }
    Ok(())
}

fn host_machine() -> u16 {
    if cfg!(target_arch = "x86_64") {
        62
    } else if cfg!(target_arch = "aarch64") {
        183
    } else if cfg!(target_arch = "riscv64") {
        243
    } else if cfg!(target_arch = "powerpc64") {
        21
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(section_offset: u64, count: u16) -> [u8; ELF_HEADER_LEN] {
        let mut h = [0u8; ELF_HEADER_LEN];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16..18].copy_from_slice(&3u16.to_le_bytes());
        h[18..20].copy_from_slice(&host_machine().to_le_bytes());
        h[40..48].copy_from_slice(&section_offset.to_le_bytes());
        h[58..60].copy_from_slice(&64u16.to_le_bytes());
        h[60..62].copy_from_slice(&count.to_le_bytes());
        h
    }

    #[test]
    fn screening_rejects_empty_text_and_truncated_files() {
        assert_eq!(screen_image(b"").unwrap_err(), "empty file");
        let text = b"this is not a library, just some text that is long enough to fill a header";
        assert!(screen_image(text).unwrap_err().contains("no ELF header"));
        assert!(screen_image(b"\x7fELF")
            .unwrap_err()
            .contains("no ELF header"));

        // The test binary is a complete ELF file (a PIE, so of the shared-object type) but no
        // plugin; its first 4000 bytes are not even complete.
        let exe = fs_read_self();
        let err = screen_image(&exe).unwrap_err();
        assert!(err.starts_with("not an aa plugin"), "{err}");
        assert!(err.contains(aa_abi::host::ROOT_MODULE_SYMBOL), "{err}");
        let err = screen_image(&exe[..4000]).unwrap_err();
        assert!(err.starts_with("truncated file"), "{err}");
    }

    fn fs_read_self() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn truncation_is_detected_from_the_header() {
        let h = header(10_000, 30);
        assert!(check_elf_header(&h, 20_000).is_ok());
        assert!(check_elf_header(&h, 4_000)
            .unwrap_err()
            .starts_with("truncated file"));
    }

    #[test]
    fn damaged_section_tables_are_an_error_not_a_panic() {
        // Section headers inside the file but full of garbage, and a table whose string
        // section index points nowhere.
        let mut image = header(64, 3).to_vec();
        image.extend((0..3 * 64).map(|i| (i * 37 % 251) as u8));
        let err = screen_image(&image).unwrap_err();
        assert!(
            err.starts_with("damaged ELF file") || err.starts_with("not an aa plugin"),
            "{err}"
        );
        let mut image = header(64, 2).to_vec();
        image.extend([0xffu8; 128]);
        assert!(screen_image(&image).is_err());
    }

    #[test]
    fn a_plugin_passes_and_loses_its_symbol_when_renamed() {
        // A built plugin, when the build left one next to the test binary's directory.
        let Some(plugin) = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("libaa_plugin_tar_internal.so")))
            .filter(|p| p.is_file())
        else {
            eprintln!("no built plugin next to the test binary; skipped");
            return;
        };
        assert_eq!(screen_file(&plugin), Ok(()));
        let mut bytes = std::fs::read(&plugin).unwrap();
        assert_eq!(screen_image(&bytes), Ok(()));
        let symbol = aa_abi::host::ROOT_MODULE_SYMBOL.as_bytes();
        let mut renamed = 0;
        let mut i = 0;
        while let Some(at) = bytes[i..].windows(symbol.len()).position(|w| w == symbol) {
            bytes[i + at] = b'X';
            renamed += 1;
            i += at + 1;
        }
        assert!(renamed > 0);
        assert!(screen_image(&bytes)
            .unwrap_err()
            .starts_with("not an aa plugin"));
    }
}
