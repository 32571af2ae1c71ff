//! TEMPORARY stand-in until spec.rs lands.
use std::path::{Path, PathBuf};
pub struct ArchiveSpec { file: PathBuf, name: String, path: PathBuf, inc: Vec<String>, exc: Vec<String>, archive: Vec<(String, String)> }
#[derive(Debug)]
pub struct SpecError(String);
impl std::fmt::Display for SpecError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) } }
impl ArchiveSpec {
    pub fn load(file: &Path) -> Result<ArchiveSpec, SpecError> {
        let text = std::fs::read_to_string(file).map_err(|e| SpecError(format!("{}: {e}", file.display())))?;
        let mut s = ArchiveSpec { file: file.into(), name: file.file_stem().unwrap().to_string_lossy().into(), path: PathBuf::new(), inc: vec![], exc: vec![], archive: vec![] };
        let mut have_path = false;
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                let (k, v) = (k.trim(), v.trim());
                match k { "path" => { s.path = v.into(); have_path = true }, "name" => s.name = v.into(),
                  "include-files" => s.inc = v.split_whitespace().map(String::from).collect(),
                  "exclude-files" => s.exc = v.split_whitespace().map(String::from).collect(),
                  _ => s.archive.push((k.into(), v.into())) }
            }
        }
        if !have_path { return Err(SpecError(format!("{}: missing option \"path\" in section [Content]", file.display()))); }
        Ok(s)
    }
    pub fn name(&self) -> &str { &self.name }
    pub fn file(&self) -> &Path { &self.file }
    pub fn path(&self) -> &Path { &self.path }
    pub fn include_files(&self) -> &[String] { &self.inc }
    pub fn exclude_files(&self) -> &[String] { &self.exc }
    pub fn archive_option(&self, name: &str) -> Option<&str> { self.archive.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()) }
}
pub fn expand_wildcards(root: &Path, patterns: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut out = vec![]; let mut w = vec![];
    for p in patterns { if root.join(p).symlink_metadata().is_ok() { out.push(PathBuf::from(p)) } else { w.push(format!("Cannot access \"{p}\". No such file or directory.")) } }
    (out, w)
}
pub fn parse_int(option: &str, v: &str) -> Result<i64, String> { v.trim().parse().map_err(|_| format!("option \"{option}\": \"{v}\" is not a number")) }
pub fn parse_bool(option: &str, v: &str) -> Result<bool, String> { match v.trim().to_ascii_lowercase().as_str() { "yes"|"true"|"on"|"1" => Ok(true), "no"|"false"|"off"|"0" => Ok(false), _ => Err(format!("option \"{option}\": \"{v}\" is not a boolean")) } }
