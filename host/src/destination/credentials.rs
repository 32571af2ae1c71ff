//! The credentials of an object store, found where the AWS CLI finds them: the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else the shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`; profile
//! `AWS_PROFILE`, else `default`). Never from an archive specification: a `.aa` file is often
//! shared or kept with the data. A credentials file that group or others can read is refused,
//! naming it, as ssh refuses a readable private key: a leaked key opens every backup.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::DestinationError;

/// An access key (and a session token for temporary credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

// The secret never reaches a log or a debug dump.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials from this process's environment and home directory.
    pub fn from_environment() -> Result<Credentials, DestinationError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Credentials::resolve(&|name| std::env::var(name).ok(), home.as_deref())
    }

    /// The credentials given the environment `env` and the home directory `home`.
    pub fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Credentials, DestinationError> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => {
                return Ok(Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: var("AWS_SESSION_TOKEN"),
                })
            }
            (Some(_), None) => {
                return Err(DestinationError::new(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                ))
            }
            (None, Some(_)) => {
                return Err(DestinationError::new(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
                ))
            }
            (None, None) => {}
        }
        let file =
            match (var("AWS_SHARED_CREDENTIALS_FILE"), home) {
                (Some(file), _) => PathBuf::from(file),
                (None, Some(home)) => home.join(".aws/credentials"),
                (None, None) => return Err(DestinationError::new(
                    "no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and \
                     without HOME there is no ~/.aws/credentials",
                )),
            };
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        from_file(&file, &profile)
    }
}

/// The credentials of `profile` in the shared credentials file `file`.
fn from_file(file: &Path, profile: &str) -> Result<Credentials, DestinationError> {
    let fail = |why: String| DestinationError::new(format!("{}: {why}", file.display()));
    let meta = match fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "no credentials: neither AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set \
                 nor does this file exist"
                    .into(),
            ))
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let mode = meta.permissions().mode();
    if mode & 0o044 != 0 {
        return Err(fail(format!(
            "readable by group or others (mode {:03o}); refused: make it private (chmod 600)",
            mode & 0o777
        )));
    }
    let text = fs::read_to_string(file).map_err(|e| fail(e.to_string()))?;
    let (mut access_key_id, mut secret_access_key, mut session_token) = (None, None, None);
    let mut in_profile = false;
    let mut found = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            found |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => access_key_id = value,
            "aws_secret_access_key" => secret_access_key = value,
            "aws_session_token" => session_token = value,
            _ => {}
        }
    }
    if !found {
        return Err(fail(format!("no profile [{profile}]")));
    }
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        }),
        _ => Err(fail(format!(
            "profile [{profile}] lacks aws_access_key_id or aws_secret_access_key"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(vars: &[(&str, &str)], home: Option<&Path>) -> Result<Credentials, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::resolve(&|name| vars.get(name).cloned(), home).map_err(|e| e.to_string())
    }

    fn write_file(path: &Path, text: &str, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    const FILE: &str = "[default]\naws_access_key_id = AKD\naws_secret_access_key = SD\n\n\
                        [work]\n# a comment\naws_access_key_id=AKW\naws_secret_access_key=SW\n\
                        aws_session_token = TW\n";

    #[test]
    fn the_environment_comes_first() {
        let home = tempfile::tempdir().unwrap();
        write_file(&home.path().join(".aws/credentials"), FILE, 0o600);
        let c = resolve(
            &[
                ("AWS_ACCESS_KEY_ID", "AKE"),
                ("AWS_SECRET_ACCESS_KEY", "SE"),
                ("AWS_SESSION_TOKEN", "TE"),
            ],
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("AKE", "SE")
        );
        assert_eq!(c.session_token.as_deref(), Some("TE"));
        assert!(!format!("{c:?}").contains("SE"));
        let e = resolve(&[("AWS_ACCESS_KEY_ID", "AKE")], Some(home.path())).unwrap_err();
        assert_eq!(
            e,
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
        );
    }

    #[test]
    fn the_credentials_file_and_its_profiles() {
        let home = tempfile::tempdir().unwrap();
        write_file(&home.path().join(".aws/credentials"), FILE, 0o600);
        let c = resolve(&[], Some(home.path())).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token), ("AKD", None));
        let c = resolve(&[("AWS_PROFILE", "work")], Some(home.path())).unwrap();
        assert_eq!(c.access_key_id, "AKW");
        assert_eq!(c.session_token.as_deref(), Some("TW"));
        let e = resolve(&[("AWS_PROFILE", "none")], Some(home.path())).unwrap_err();
        assert!(e.ends_with("credentials: no profile [none]"), "{e}");

        let other = home.path().join("elsewhere");
        write_file(&other, "[default]\naws_access_key_id=X\n", 0o400);
        let e = resolve(
            &[("AWS_SHARED_CREDENTIALS_FILE", other.to_str().unwrap())],
            Some(home.path()),
        )
        .unwrap_err();
        assert_eq!(
            e,
            format!(
                "{}: profile [default] lacks aws_access_key_id or aws_secret_access_key",
                other.display()
            )
        );
        let e = resolve(&[], Some(&home.path().join("no-home"))).unwrap_err();
        assert!(e.contains("no credentials"), "{e}");
    }

    #[test]
    fn a_credentials_file_others_can_read_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".aws/credentials");
        for mode in [0o644, 0o640, 0o604] {
            write_file(&file, FILE, mode);
            let e = resolve(&[], Some(home.path())).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "{}: readable by group or others (mode {mode:03o}); refused: make it \
                     private (chmod 600)",
                    file.display()
                )
            );
        }
        write_file(&file, FILE, 0o600);
        assert!(resolve(&[], Some(home.path())).is_ok());
    }
}
