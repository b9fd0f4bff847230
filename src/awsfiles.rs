//! TEMPORARY shim until the real module lands (helper is writing it).
use std::path::PathBuf;
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {what}", path.display())]
pub struct FileError { pub path: PathBuf, pub line: usize, pub what: &'static str }
pub enum ProfileKind { StaticKeys, NoCredentials }
pub struct Profile;
impl Profile { pub fn kind(&self) -> ProfileKind { ProfileKind::StaticKeys } }
pub struct Profiles;
impl Profiles {
    pub fn get(&self, _n: &str) -> Option<Profile> { Some(Profile) }
    pub fn names(&self) -> Vec<String> { vec![] }
    pub fn describe_files(&self) -> String { String::new() }
}
