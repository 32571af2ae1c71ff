//! Reading a file as INI text. Every file `aa` reads as INI goes through [`read_text_file`]
//! (by [`Ini::load`]), so that a FIFO, a device or a huge file named as a specification, a
//! referenced file, a configuration file or a storage realm cannot hang or exhaust a run.

use std::path::Path;

use super::error::{ErrorKind, IniError};
use super::{Ini, IniOptions, MAX_FILE_SIZE};

/// Reads the regular file at `path` (following symbolic links), at most [`MAX_FILE_SIZE`]
/// bytes. Anything else (a FIFO, a device, a directory) is refused without reading from it,
/// and the open itself cannot block: `O_NONBLOCK` keeps a FIFO without a writer from hanging.
pub(super) fn read_text_file(path: &Path) -> Result<Vec<u8>, IniError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

    let error = |kind| IniError::new(path, None, kind);
    // Rust opens every file with O_CLOEXEC. std's open (not rustix's) keeps its own errors,
    // such as the one for a name with a NUL byte, which a referenced file name can have.
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)
        .map_err(|e| error(ErrorKind::Io(e)))?;
    let file_type = file
        .metadata()
        .map_err(|e| error(ErrorKind::Io(e)))?
        .file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "an unknown type"
        };
        return Err(error(ErrorKind::NotRegular(kind)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(ErrorKind::Io(e)))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(error(ErrorKind::TooLarge));
    }
    Ok(bytes)
}

impl Ini {
    /// Reads and parses the file at `path`.
    pub(crate) fn load(path: &Path, options: IniOptions) -> Result<Ini, IniError> {
        let bytes = read_text_file(path)?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..valid]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(IniError::new(path, Some(line), ErrorKind::NotUtf8));
            }
        };
        Ini::parse(&text, path, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.ini");
        let mode = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
        assert_eq!(rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, mode), Ok(()));
        let zero = dir.path().join("zero.ini");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let large = dir.path().join("large.ini");
        let mut text = String::from("[s]\n");
        while text.len() as u64 <= MAX_FILE_SIZE {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&large, &text).unwrap();
        let at_limit = dir.path().join("limit.ini");
        std::fs::write(&at_limit, &text[text.len() - MAX_FILE_SIZE as usize..]).unwrap();
        let paths = [
            fifo.clone(),
            zero.clone(),
            large.clone(),
            dir.path().to_path_buf(),
        ];
        let errors = crate::test_support::bounded(move || {
            paths.map(|p| read_text_file(&p).unwrap_err().to_string())
        });
        assert_eq!(
            errors,
            [
                format!("{}: not a regular file (a FIFO)", fifo.display()),
                format!(
                    "{}: not a regular file (a character device)",
                    zero.display()
                ),
                format!(
                    "{}: the file is larger than {MAX_FILE_SIZE} bytes, the limit for such a file",
                    large.display()
                ),
                format!("{}: not a regular file (a directory)", dir.path().display()),
            ]
        );
        assert_eq!(
            read_text_file(&at_limit).unwrap().len() as u64,
            MAX_FILE_SIZE
        );
    }

    #[test]
    fn io_and_encoding_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.ini");
        let e = Ini::load(&missing, IniOptions::default()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())));
        let bad = dir.path().join("bad.ini");
        std::fs::write(&bad, b"[s]\na = 1\nb = \xff\n").unwrap();
        let e = Ini::load(&bad, IniOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:3: the file is not valid UTF-8 text", bad.display())
        );
    }
}
