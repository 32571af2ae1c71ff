//! The reader and writer against GNU tar's layout, byte for byte, and every malformed input.

use super::*;
use crate::dumpdir::Code;

fn record(name: &[u8], entries: &[(Code, &[u8])]) -> DirRecord {
    DirRecord {
        nfs: false,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 5,
        },
        dev: 64769,
        ino: 42,
        name: name.to_vec(),
        entries: entries
            .iter()
            .map(|&(code, name)| Entry {
                code,
                name: name.to_vec(),
            })
            .collect(),
    }
}

fn file(records: &[DirRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(&Header::new(Timestamp { sec: 17, nsec: 9 }), &mut out).unwrap();
    for r in records {
        encode_record(r, &mut out).unwrap();
    }
    out
}

fn read_all(bytes: &[u8]) -> Result<(Option<Header>, Vec<DirRecord>), SnapshotError> {
    let mut reader = SnapshotReader::new(bytes)?;
    let header = reader.header().cloned();
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((header, records))
}

#[test]
fn layout_is_gnu_tar_s() {
    let bytes = file(&[
        record(b"./a", &[(Code::Directory, b"b"), (Code::Dumped, b"f1")]),
        record(b"./empty", &[]),
    ]);
    let expected: &[u8] = b"GNU tar-1.34-2\n17\09\0\
        0\x001700000000\x005\x0064769\x0042\0./a\0Db\0Yf1\0\0\0\
        0\x001700000000\x005\x0064769\x0042\0./empty\0\0\0";
    assert_eq!(bytes, expected);
}

#[test]
fn reads_back_what_it_writes() {
    let mut odd = record(
        b"dir\nwith newline\xff\xfe",
        &[(Code::Unchanged, b"a\nb\xc3")],
    );
    odd.nfs = true;
    odd.mtime = Timestamp {
        sec: -5,
        nsec: 999_999_999,
    };
    odd.dev = u64::MAX;
    odd.ino = 0;
    let records = vec![record(b".", &[]), odd, record(b"", &[(Code::Dumped, b"x")])];
    let bytes = file(&records);
    let (header, read) = read_all(&bytes).unwrap();
    assert_eq!(header.unwrap().dump_time, Timestamp { sec: 17, nsec: 9 });
    assert_eq!(read, records);
}

#[test]
fn empty_input_is_no_previous_dump() {
    let (header, records) = read_all(b"").unwrap();
    assert!(header.is_none());
    assert!(records.is_empty());
}

#[test]
fn header_only_has_no_records() {
    let (header, records) = read_all(b"GNU tar-1.35-2\n-1\x000\0").unwrap();
    let header = header.unwrap();
    assert_eq!(header.tar_version, b"1.35");
    assert_eq!(header.dump_time, Timestamp { sec: -1, nsec: 0 });
    assert!(records.is_empty());
}

/// Found by fuzzing: a version line that was read but could not be written back.
#[test]
fn nul_in_the_tar_version_is_no_snapshot() {
    let err = error_of(b"GNU tar-1.\x0034-2\n17\x009\0");
    assert!(
        err.to_string().contains("not a GNU tar snapshot file"),
        "{err}"
    );
}

fn error_of(bytes: &[u8]) -> SnapshotError {
    match read_all(bytes) {
        Ok(read) => panic!("{bytes:?} was accepted: {read:?}"),
        Err(err) => err,
    }
}

#[test]
fn errors_name_offset_and_record() {
    let good = file(&[record(b"./a", &[(Code::Dumped, b"f")])]);
    let header_len = b"GNU tar-1.34-2\n17\09\0".len() as u64;

    // Cut anywhere inside the record: an error at or before the cut, in record 1.
    for cut in header_len as usize + 1..good.len() {
        let err = error_of(&good[..cut]);
        assert_eq!(err.record(), Some(1), "cut at {cut}: {err}");
        assert!(err.offset() <= cut as u64, "cut at {cut}: {err}");
        assert!(err.to_string().contains("ends inside"), "{err}");
    }

    let mut bad_code = good.clone();
    let at = good.windows(2).position(|w| w == b"Yf").unwrap();
    bad_code[at] = b'Q';
    let err = error_of(&bad_code);
    assert_eq!((err.offset(), err.record()), (at as u64, Some(1)));
    assert_eq!(
        err.to_string(),
        format!(
            "byte {at} (directory record 1): unknown dumpdir code 'Q' (expected 'Y', 'N' or 'D')"
        )
    );

    let mut no_terminator = good.clone();
    let last = no_terminator.len() - 1;
    no_terminator[last] = b'x';
    let err = error_of(&no_terminator);
    assert_eq!(err.offset(), last as u64);
    assert!(err.to_string().contains("second NUL"), "{err}");

    let err = error_of(b"GNU tar-1.34-2\n17\x001000000000\0");
    assert_eq!(err.offset(), 18);
    assert!(err
        .to_string()
        .contains("nanoseconds field 1000000000 is out of range"));

    let err = error_of(b"GNU tar-1.34-2\n1x7\x000\0");
    assert_eq!(
        err.to_string(),
        "byte 15: seconds field \"1x7\" is not a decimal number"
    );

    let mut nfs2 = good.clone();
    nfs2[header_len as usize] = b'2';
    let err = error_of(&nfs2);
    assert_eq!((err.offset(), err.record()), (header_len, Some(1)));

    let err = error_of(b"1234567890\n0 1 ./a\n");
    assert!(err.to_string().contains("format 0"), "{err}");
    let err = error_of(b"GNU tar-1.15.90-1\n");
    assert!(err.to_string().contains("format 1"), "{err}");
    let err = error_of(b"GNU tar-1.34-3\n0\x000\0");
    assert!(
        err.to_string()
            .contains("unsupported snapshot file format \"3\""),
        "{err}"
    );
    let err = error_of(b"\x7fELF\x02\x01\x01\n");
    assert!(err.to_string().contains("not a GNU tar snapshot"), "{err}");
    let err = error_of(&[b'x'; 1000]);
    assert!(err.to_string().contains("first line longer"), "{err}");

    let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x002\0./a\0Y\0\0\0");
    assert!(err.to_string().contains("without a file name"), "{err}");

    let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x00-2\0");
    assert!(
        err.to_string().contains("ino field -2 is out of range"),
        "{err}"
    );
    let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x0018446744073709551616\0");
    assert!(err
        .to_string()
        .contains("dev field 18446744073709551616 is out of range"));

    let with_path = error_of(b"GNU").with_path("/snap/x.snar");
    assert!(
        with_path.to_string().starts_with("/snap/x.snar: byte 3: "),
        "{with_path}"
    );
}

#[test]
fn overlong_fields_are_refused_without_reading_them_whole() {
    let mut bytes = b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x002\0".to_vec();
    bytes.resize(bytes.len() + MAX_FIELD + 10, b'a');
    let err = error_of(&bytes);
    assert!(err.to_string().contains("name field is too long"), "{err}");
    let err = error_of(&[b'7'; 300]);
    assert!(err.to_string().contains("first line longer"), "{err}");
    let mut long_number = b"GNU tar-1.34-2\n".to_vec();
    long_number.extend_from_slice(&[b'1'; 100]);
    assert!(error_of(&long_number)
        .to_string()
        .contains("seconds field is too long"));
}

#[test]
fn writer_refuses_what_gnu_tar_could_not_read_back() {
    let mut out = Vec::new();
    assert!(encode_record(&record(b"a\0b", &[]), &mut out).is_err());
    assert!(encode_record(&record(b"a", &[(Code::Dumped, b"")]), &mut out).is_err());
    assert!(encode_record(&record(b"a", &[(Code::Dumped, b"x\0")]), &mut out).is_err());
    let mut late = record(b"a", &[]);
    late.mtime.nsec = 1_000_000_000;
    assert!(encode_record(&late, &mut out).is_err());
    let mut header = Header::new(Timestamp::default());
    header.tar_version = b"1-2".to_vec();
    assert!(encode_header(&header, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn writer_streams_records() {
    let records = [record(b"./a", &[(Code::Dumped, b"f")]), record(b"./b", &[])];
    let mut writer =
        SnapshotWriter::new(Vec::new(), &Header::new(Timestamp { sec: 17, nsec: 9 })).unwrap();
    for r in &records {
        writer.write_record(r).unwrap();
    }
    assert_eq!(writer.finish().unwrap(), file(&records));
}

#[test]
fn timestamps() {
    assert_eq!(
        Timestamp::from_stat(5, -1),
        Timestamp {
            sec: 4,
            nsec: 999_999_999
        }
    );
    assert_eq!(
        Timestamp::from_stat(5, 2_000_000_001),
        Timestamp { sec: 7, nsec: 1 }
    );
    assert!(
        Timestamp {
            sec: -1,
            nsec: 999_999_999
        } < Timestamp { sec: 0, nsec: 0 }
    );
    assert!(Timestamp::dump_start().sec > 1_600_000_000);
}

/// How a tool edits a snapshot in place (the tests move device numbers this way): read every
/// record, change it, write it back under the same header; nothing else changes.
#[test]
fn records_rewritten_under_the_same_header_change_only_what_was_changed() {
    let original = file(&[record(b"./a", &[(Code::Dumped, b"f")]), record(b"./b", &[])]);
    let mut reader = SnapshotReader::new(original.as_slice()).unwrap();
    let header = reader.header().cloned().unwrap();
    let mut writer = SnapshotWriter::new(Vec::new(), &header).unwrap();
    for record in reader.by_ref() {
        let mut record = record.unwrap();
        record.dev ^= 0x100;
        writer.write_record(&record).unwrap();
    }
    let rewritten = writer.finish().unwrap();
    let expected = String::from_utf8(original)
        .unwrap()
        .replace("64769", "64513");
    assert_eq!(String::from_utf8(rewritten).unwrap(), expected);
}
