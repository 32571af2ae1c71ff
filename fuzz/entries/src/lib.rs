//! One entry point per fuzz target: each feeds arbitrary bytes to one of `aa`'s parsers of
//! untrusted input and must return normally, whatever the bytes. A panic is a crash found.
//!
//! Why a crate of its own, in the main workspace: the libFuzzer wrappers in `fuzz/` need
//! nightly and a sanitizer, but the inputs they found must keep being checked by `make test`
//! on stable. Both call the functions here: `fuzz/fuzz_targets/<target>.rs` under libFuzzer,
//! `tests/replay.rs` for every saved corpus file and past crash. TarInternal's targets are in
//! `fuzz/entries-tar-internal`: the two plugin crates export the same plugin symbols, so no
//! binary can link both.
//!
//! Where a parser has a writer, the entry also checks that what was read is written back and
//! read again to the same thing, so that a reader accepting what its writer refuses (or
//! reading it differently) counts as a crash too.

use std::path::Path;
use std::sync::OnceLock;

use aa_provider_kit::dumpdir::{self, Item};
use aa_provider_kit::snapshot_file::{
    drop_vanished_tops, encode_header, encode_record, DirRecord, Header, SnapshotReader,
};

/// The targets of this crate, by the name of its corpus directory and cargo-fuzz binary.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("ini", ini),
    ("spec", spec),
    ("snapshot", snapshot),
    ("dumpdir", dumpdir),
    ("tar_stderr", tar_stderr),
    ("elf", elf),
];

/// The configparser reader, with the settings of each of its users, every value read.
pub fn ini(data: &[u8]) {
    // `Ini::load` refuses text that is not UTF-8 before parsing; the parser sees only text.
    let text = String::from_utf8_lossy(data);
    for (lowercase, no_value, interpolation) in [
        (true, false, true),
        (false, true, true),
        (true, false, false),
    ] {
        let _ = aa_host::fuzzing::ini(&text, lowercase, no_value, interpolation);
    }
}

/// Byte that separates the files of a `spec` input; it never occurs in UTF-8 text, so every
/// part can still be any valid specification.
pub const SPEC_SEPARATOR: u8 = 0xff;

/// The files a `spec` input is split into, in order: the specification loaded, and two it
/// can reference in `[External]` (bare `common`, and `lib/shared.aa`).
const SPEC_FILES: [&str; 3] = ["home.aa", "common.aa", "lib/shared.aa"];

/// The specification loader with `[External]` references and interpolation. The input is
/// up to three files separated by [`SPEC_SEPARATOR`] (see `SPEC_FILES`), written into a
/// private directory that is the specifications directory; a missing part is a missing file.
pub fn spec(data: &[u8]) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            std::fs::create_dir(dir.path().join("lib")).expect("lib/");
            dir
        })
        .path();
    let mut parts = data.splitn(SPEC_FILES.len(), |&b| b == SPEC_SEPARATOR);
    for name in SPEC_FILES {
        let path = dir.join(name);
        match parts.next() {
            Some(text) => std::fs::write(&path, text).expect("writing a spec file"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let _ = aa_host::fuzzing::spec(&dir.join(SPEC_FILES[0]), dir);
}

/// Reads a whole snapshot file; `None` when it is malformed.
fn read_snapshot(data: &[u8]) -> Option<(Option<Header>, Vec<DirRecord>)> {
    let mut reader = SnapshotReader::new(data).ok()?;
    let header = reader.header().cloned();
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().ok()? {
        records.push(record);
    }
    Some((header, records))
}

/// The GNU snapshot reader; a snapshot it reads is written back and read again unchanged,
/// and dropping the vanished top directories (all of them: the root does not exist) gives
/// a snapshot it reads too.
pub fn snapshot(data: &[u8]) {
    let Some((header, records)) = read_snapshot(data) else {
        return;
    };
    let Some(header) = header else {
        assert!(records.is_empty(), "records without a header");
        return;
    };
    let mut written = Vec::new();
    encode_header(&header, &mut written).expect("a header read can be written");
    for record in &records {
        encode_record(record, &mut written).expect("a record read can be written");
    }
    let again = read_snapshot(&written).expect("a snapshot written can be read");
    assert_eq!(again, (Some(header), records), "read back differently");

    let mut output = Vec::new();
    let root = Path::new("/nonexistent/aa-fuzz-root");
    let dropped = drop_vanished_tops(&mut std::io::Cursor::new(data), &mut output, root)
        .expect("a snapshot read can be filtered");
    if !dropped.is_empty() {
        read_snapshot(&output).expect("the filtered snapshot can be read");
    }
}

/// The dumpdir decoder; a dumpdir it decodes is encoded (entries first, then the renames in
/// their order, as the writer puts them) and decoded again to the same items.
pub fn dumpdir(data: &[u8]) {
    let Ok(items) = dumpdir::parse(data) else {
        return;
    };
    let (entries, renames): (Vec<&Item>, Vec<&Item>) =
        items.iter().partition(|i| matches!(i, Item::Entry(_)));
    let entries: Vec<_> = entries
        .into_iter()
        .filter_map(|i| match i {
            Item::Entry(e) => Some(e.clone()),
            Item::Rename(_) => None,
        })
        .collect();
    let renames: Vec<_> = renames
        .into_iter()
        .filter_map(|i| match i {
            Item::Rename(r) => Some(r.clone()),
            Item::Entry(_) => None,
        })
        .collect();
    let encoded = dumpdir::encode(&entries, &renames).expect("a dumpdir read can be written");
    let again = dumpdir::parse(&encoded).expect("a dumpdir written can be read");
    let expected: Vec<Item> = entries
        .into_iter()
        .map(Item::Entry)
        .chain(renames.into_iter().map(Item::Rename))
        .collect();
    assert_eq!(again, expected, "read back differently");
}

/// TarExternal's classifier of tar's stderr lines (and the decoding of its quoted names),
/// line by line as the provider reads them.
pub fn tar_stderr(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let _ = aa_plugin_tar_external::fuzzing::classify_stderr(line);
        let _ = aa_plugin_tar_external::quoting::unescape(line);
        let _ = aa_plugin_tar_external::quoting::split_fields(line);
    }
}

/// The plugin loader's screening of a candidate plugin file (ELF header, section tables, the
/// root-module symbol in the dynamic symbol table).
pub fn elf(data: &[u8]) {
    let _ = aa_host::fuzzing::elf_screen(data);
}
