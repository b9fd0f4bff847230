//! TEMPORARY shim until the real module lands (helper is writing it).
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {what}", path.display())]
pub struct FileError { pub path: PathBuf, pub line: usize, pub what: &'static str }
pub enum ProfileKind { StaticKeys, NoCredentials }
pub struct Profile;
impl Profile { pub fn kind(&self) -> Result<ProfileKind, FileError> { Ok(ProfileKind::StaticKeys) } }
pub struct SharedFile(PathBuf);
impl SharedFile { pub fn path(&self) -> &Path { &self.0 } }
pub struct Profiles(SharedFile, SharedFile);
impl Profiles {
    pub fn load(_env: &dyn Fn(&str) -> Option<String>) -> Result<Profiles, FileError> { Ok(Profiles(SharedFile(PathBuf::new()), SharedFile(PathBuf::new()))) }
    pub fn get(&self, _n: &str) -> Option<Profile> { Some(Profile) }
    pub fn names(&self) -> Vec<String> { vec![] }
    pub fn credentials(&self) -> &SharedFile { &self.0 }
    pub fn config(&self) -> &SharedFile { &self.1 }
}
