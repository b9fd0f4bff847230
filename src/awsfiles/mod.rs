//! The AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials):
//! parsing them as the AWS CLI does, resolving a profile, and rewriting one
//! profile's keys in place without touching any other byte.
//!
//! "As the AWS CLI does" means botocore's reading: Python's `RawConfigParser`
//! (`=` or `:` between key and value, keys lowercased, full-line `#`/`;`
//! comments, no inline comments, indented lines continue the previous value),
//! plus `[profile x]`/`[default]` naming in the config file and verbatim
//! section names in the credentials file. Where the CLI would silently take
//! one of two conflicting definitions (a duplicate section or key), rekey
//! refuses instead: rewriting the wrong one would leave a stale key in use.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
/// botocore accepts the legacy `aws_security_token` as a session token too.
const SESSION_TOKENS: [&str; 2] = ["aws_session_token", "aws_security_token"];
/// The UTF-8 byte-order mark: botocore reads it as part of the first line
/// and fails on the whole file.
pub const BOM: char = '\u{feff}';

/// Which of the two files: they name profile sections differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `[name]` is profile `name`, whatever `name` is.
    Credentials,
    /// `[profile name]` or `[default]`; other sections (`[sso-session x]`,
    /// `[services x]`, …) are not profiles.
    Config,
}

/// What is wrong with one line of a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Notepad's "UTF-8" adds one; it is invisible in most editors.
    #[error(
        "starts with a UTF-8 byte-order mark (BOM), which the AWS CLI cannot read either \
         (save it as UTF-8 without BOM)"
    )]
    ByteOrderMark,
    #[error("a setting before the first [section] header")]
    SettingBeforeSection,
    #[error("not a [section], comment, `key = value` setting or indented continuation")]
    NotASetting,
    #[error("`[` without a closing `]`")]
    UnterminatedSection,
    #[error("a section header without a name")]
    EmptyName,
    #[error("section [{name}] is defined twice; the first is on line {first}")]
    DuplicateSection { name: String, first: usize },
    #[error("`{key}` is set twice in this section; the first is on line {first}")]
    DuplicateKey { key: String, first: usize },
    #[error("an indented sub-setting without `=`")]
    SubSettingWithoutEquals,
}

/// Errors never carry a setting's value: the value may be a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: {what}; fix the file by hand, rekey changed nothing")]
    Malformed {
        path: PathBuf,
        line: usize,
        what: Malformed,
    },
    #[error("{path}: profile [{profile}] has {present} but no {missing}")]
    PartialKeys {
        path: PathBuf,
        profile: String,
        present: &'static str,
        missing: &'static str,
    },
    #[error("{path}: there is no profile [{profile}] to update")]
    NoSuchProfile { path: PathBuf, profile: String },
    #[error("{path}:{line}: profile [{profile}] has no {key} line to update")]
    MissingKey {
        path: PathBuf,
        line: usize,
        profile: String,
        key: &'static str,
    },
    #[error(
        "{path}:{line}: {key} of profile [{profile}] continues on the next line; \
         put it on one line so that rekey can rewrite it"
    )]
    MultiLineValue {
        path: PathBuf,
        line: usize,
        profile: String,
        key: &'static str,
    },
    #[error("the new {key} is empty or contains whitespace")]
    BadNewValue { key: &'static str },
    #[error("profile [{profile}] is in neither the credentials nor the config file")]
    NoProfile { profile: String },
    #[error("profile [{profile}] names source_profile [{source_profile}], which does not exist")]
    MissingSourceProfile {
        profile: String,
        source_profile: String,
    },
    #[error("source_profile links form a loop: {}", .cycle.join(" -> "))]
    SourceProfileLoop { cycle: Vec<String> },
    #[error("HOME is not set: set {variable} to the file's path")]
    NoHome { variable: &'static str },
}

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_path(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, FileError> {
    locate(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
}

/// `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, FileError> {
    locate(env, "AWS_CONFIG_FILE", ".aws/config")
}

fn locate(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    under_home: &str,
) -> Result<PathBuf, FileError> {
    let home = || env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    // botocore also expands `$VAR` in these; only `~` is expanded here.
    match env(variable).filter(|v| !v.is_empty()) {
        Some(path) if path == "~" => home().ok_or(FileError::NoHome { variable }),
        Some(path) => match path.strip_prefix("~/") {
            Some(rest) => Ok(home().ok_or(FileError::NoHome { variable })?.join(rest)),
            None => Ok(PathBuf::from(path)),
        },
        None => Ok(home()
            .ok_or(FileError::NoHome { variable })?
            .join(under_home)),
    }
}

/// The section headers of a shared file that the AWS SDK for Rust cannot
/// read, as `(line number, header)`: it takes `#` and `;` anywhere in a
/// `[…]` line for the start of a comment, so `[dev#1]` becomes an unclosed
/// `[dev` and the whole file is refused, while the AWS CLI and rekey's own
/// parser read it. Pure.
pub fn sdk_unreadable_headers(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim_start_matches(BOM);
            (line.starts_with('[') && line.contains(['#', ';']))
                .then(|| (i + 1, line.trim_end().to_string()))
        })
        .collect()
}

/// One file, every byte of it, with an index of its sections and settings.
///
/// `Debug` prints names and non-secret values only; there is deliberately no
/// `Display`, so the contents (which hold secrets) come out only through
/// [`SharedFile::to_string`].
pub struct SharedFile {
    kind: FileKind,
    path: PathBuf,
    lines: Vec<Line>,
    sections: Vec<Section>,
}

struct Line {
    /// Without the line ending.
    text: String,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a newline.
    ending: &'static str,
}

#[derive(Clone)]
struct Section {
    name: String,
    /// The profile this section defines, if it is a profile section.
    profile: Option<String>,
    /// 0-based index into `lines`.
    line: usize,
    settings: Vec<Setting>,
}

#[derive(Clone)]
struct Setting {
    /// Lowercased, as `RawConfigParser` does.
    key: String,
    /// Continuation lines are joined with `\n`, as in Python.
    value: String,
    line: usize,
    /// Where the first line's value sits in that line's text.
    value_at: Range<usize>,
    continued: bool,
}

impl SharedFile {
    /// Parses a credentials file.
    pub fn parse(path: &Path, text: &str) -> Result<SharedFile, FileError> {
        Self::parse_as(FileKind::Credentials, path, text)
    }

    pub fn parse_as(kind: FileKind, path: &Path, text: &str) -> Result<SharedFile, FileError> {
        let mut file = SharedFile {
            kind,
            path: path.to_path_buf(),
            lines: Vec::new(),
            sections: Vec::new(),
        };
        if text.starts_with(BOM) {
            return Err(FileError::Malformed {
                path: path.to_path_buf(),
                line: 1,
                what: Malformed::ByteOrderMark,
            });
        }
        // Indentation of the setting that indented lines would continue.
        let mut open_setting: Option<usize> = None;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let (text, ending) = if let Some(t) = raw.strip_suffix("\r\n") {
                (t, "\r\n")
            } else if let Some(t) = raw.strip_suffix('\n') {
                (t, "\n")
            } else {
                (raw, "")
            };
            file.lines.push(Line {
                text: text.to_owned(),
                ending,
            });
            let fail = |what| FileError::Malformed {
                path: path.to_path_buf(),
                line: index + 1,
                what,
            };
            let trimmed = text.trim();
            // Blank and comment lines do not end a multi-line value in Python.
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            let indent = text.len() - text.trim_start().len();
            if open_setting.is_some_and(|i| indent > i) {
                let setting = file.last_setting_mut().expect("an open setting exists");
                if setting.value.is_empty() && !trimmed.contains('=') {
                    return Err(fail(Malformed::SubSettingWithoutEquals));
                }
                setting.value.push('\n');
                setting.value.push_str(trimmed);
                setting.continued = true;
                continue;
            }
            open_setting = None;
            if let Some(header) = trimmed.strip_prefix('[') {
                file.open_section(header, index).map_err(fail)?;
                continue;
            }
            file.add_setting(text, index).map_err(fail)?;
            open_setting = Some(indent);
        }
        Ok(file)
    }

    /// Starts the section whose header (past its `[`) is on line `index`.
    fn open_section(&mut self, header: &str, index: usize) -> Result<(), Malformed> {
        // Python ignores whatever follows the last `]`.
        let end = header.rfind(']').ok_or(Malformed::UnterminatedSection)?;
        let name = header[..end].trim();
        let profile = profile_of(self.kind, name).ok_or(Malformed::EmptyName)?;
        let same = |s: &&Section| match (&profile, &s.profile) {
            (Some(p), Some(q)) => p == q,
            (None, None) => s.name == name,
            _ => false,
        };
        if let Some(first) = self.sections.iter().find(same) {
            let (name, first) = (name.to_owned(), first.line + 1);
            return Err(Malformed::DuplicateSection { name, first });
        }
        let (name, line, settings) = (name.to_owned(), index, Vec::new());
        self.sections.push(Section {
            name,
            profile,
            line,
            settings,
        });
        Ok(())
    }

    /// Adds the `key = value` setting of line `index` to the last section.
    fn add_setting(&mut self, text: &str, index: usize) -> Result<(), Malformed> {
        let Some(section) = self.sections.last_mut() else {
            return Err(Malformed::SettingBeforeSection);
        };
        // `RawConfigParser` splits at the first `=` or `:`.
        let at = text.find(['=', ':']).ok_or(Malformed::NotASetting)?;
        let key = text[..at].trim().to_lowercase();
        if key.is_empty() {
            return Err(Malformed::NotASetting);
        }
        if let Some(first) = section.settings.iter().find(|s| s.key == key) {
            let first = first.line + 1;
            return Err(Malformed::DuplicateKey { key, first });
        }
        let after = &text[at + 1..];
        let start = at + 1 + (after.len() - after.trim_start().len());
        let value = text[start..].trim_end();
        section.settings.push(Setting {
            key,
            value: value.to_owned(),
            line: index,
            value_at: start..start + value.len(),
            continued: false,
        });
        Ok(())
    }

    /// Reads and parses `path`; a file that does not exist reads as empty,
    /// as it does for the CLI.
    pub fn read(kind: FileKind, path: &Path) -> Result<SharedFile, FileError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse_as(kind, path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::parse_as(kind, path, ""),
            Err(source) => Err(FileError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// Profiles defined in this file, in file order.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().filter_map(|s| s.profile.as_deref())
    }

    /// The file's exact bytes, with any edits.
    // Not `Display`: formatting a file must not be a way to print its secrets.
    #[expect(
        clippy::inherent_to_string,
        reason = "contents hold secrets; no Display on purpose"
    )]
    pub fn to_string(&self) -> String {
        self.lines
            .iter()
            .flat_map(|l| [l.text.as_str(), l.ending])
            .collect()
    }

    /// Replaces the values of `aws_access_key_id` and `aws_secret_access_key`
    /// in `profile`'s section. Only the two values change: the key spelling,
    /// spacing around `=`, trailing whitespace and line endings stay. On error
    /// nothing has changed.
    pub fn set_keys(
        &mut self,
        profile: &str,
        access_key_id: &str,
        secret: &str,
    ) -> Result<(), FileError> {
        let path = &self.path;
        let Some(section) = self
            .sections
            .iter_mut()
            .find(|s| s.profile.as_deref() == Some(profile))
        else {
            return Err(FileError::NoSuchProfile {
                path: path.clone(),
                profile: profile.to_owned(),
            });
        };
        let mut edits = Vec::new();
        for (key, new) in [(ACCESS_KEY_ID, access_key_id), (SECRET_ACCESS_KEY, secret)] {
            // A value with spaces or a newline would change how the file parses.
            if new.is_empty() || new.contains(char::is_whitespace) {
                return Err(FileError::BadNewValue { key });
            }
            let (path, profile) = (path.clone(), profile.to_owned());
            let Some(i) = section.settings.iter().position(|s| s.key == key) else {
                return Err(FileError::MissingKey {
                    path,
                    line: section.line + 1,
                    profile,
                    key,
                });
            };
            if section.settings[i].continued {
                let line = section.settings[i].line + 1;
                return Err(FileError::MultiLineValue {
                    path,
                    line,
                    profile,
                    key,
                });
            }
            edits.push((i, new));
        }
        for (i, new) in edits {
            let setting = &mut section.settings[i];
            self.lines[setting.line]
                .text
                .replace_range(setting.value_at.clone(), new);
            setting.value_at = setting.value_at.start..setting.value_at.start + new.len();
            setting.value = new.to_owned();
        }
        Ok(())
    }

    /// The access key ID and secret that `profile`'s own section sets, when
    /// it sets both.
    pub fn keys(&self, profile: &str) -> Option<(&str, &str)> {
        let settings = &self.section(profile)?.settings;
        Some((
            layer_get(settings, ACCESS_KEY_ID)?,
            layer_get(settings, SECRET_ACCESS_KEY)?,
        ))
    }

    /// Profiles of this file whose own section holds `access_key_id`, in
    /// file order.
    pub fn holding_key(&self, access_key_id: &str) -> Vec<String> {
        let holds = |s: &&Section| layer_get(&s.settings, ACCESS_KEY_ID) == Some(access_key_id);
        let sections = self.sections.iter().filter(holds);
        sections.filter_map(|s| s.profile.clone()).collect()
    }

    fn last_setting_mut(&mut self) -> Option<&mut Setting> {
        self.sections.last_mut()?.settings.last_mut()
    }

    fn section(&self, profile: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.profile.as_deref() == Some(profile))
    }
}

/// The profile a section header names, `Some(None)` for a section that is not
/// a profile, `None` for a header with no usable name.
fn profile_of(kind: FileKind, name: &str) -> Option<Option<String>> {
    if name.is_empty() {
        return None;
    }
    match kind {
        FileKind::Credentials => Some(Some(name.to_owned())),
        FileKind::Config if name == "default" => Some(Some(name.to_owned())),
        FileKind::Config => match name.strip_prefix("profile") {
            // botocore shlex-splits the header and wants exactly two words.
            Some(rest) if rest.starts_with(char::is_whitespace) => {
                let profile = rest.trim();
                (!profile.is_empty()).then(|| Some(profile.to_owned()))
            }
            Some("") => None,
            _ => Some(None),
        },
    }
}

fn is_secret(key: &str) -> bool {
    key == SECRET_ACCESS_KEY || SESSION_TOKENS.contains(&key)
}

/// Settings as a map, secret values replaced.
struct Redacted<'a>(&'a [Setting]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|s| {
            (
                &s.key,
                if is_secret(&s.key) {
                    "<redacted>"
                } else {
                    s.value.as_str()
                },
            )
        });
        f.debug_map().entries(shown).finish()
    }
}

impl fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for section in &self.sections {
            map.entry(&section.name, &Redacted(&section.settings));
        }
        map.finish()?;
        write!(f, " from {} ({:?})", self.path.display(), self.kind)
    }
}

/// How a profile gets credentials, in the order botocore tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    StaticKeys,
    SessionToken,
    AssumeRole {
        role_arn: String,
        source_profile: Option<String>,
        credential_source: Option<String>,
        mfa_serial: Option<String>,
        external_id: Option<String>,
    },
    Sso,
    CredentialProcess,
    WebIdentity,
    NoCredentials,
}

/// One profile: its settings from the credentials file, then from the config
/// file. Cheap to clone; no `Debug` output shows a secret.
#[derive(Clone)]
pub struct Profile {
    name: String,
    /// Credentials file first: for the same key it wins, as in botocore.
    layers: Vec<Layer>,
}

#[derive(Clone)]
struct Layer {
    kind: FileKind,
    path: PathBuf,
    settings: Vec<Setting>,
}

impl Profile {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` (case-insensitive); empty values count as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        self.layers
            .iter()
            .find_map(|l| layer_get(&l.settings, &key))
    }

    pub fn mfa_serial(&self) -> Option<&str> {
        self.get("mfa_serial")
    }

    pub fn region(&self) -> Option<&str> {
        self.get("region")
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.get("endpoint_url")
    }

    /// Errs when one file holds only half of a key pair: botocore would fail
    /// on that profile too.
    pub fn kind(&self) -> Result<ProfileKind, FileError> {
        let owned = |key| self.get(key).map(str::to_owned);
        if let Some(role_arn) = owned("role_arn") {
            if self.get("web_identity_token_file").is_some() {
                return Ok(ProfileKind::WebIdentity);
            }
            return Ok(ProfileKind::AssumeRole {
                role_arn,
                source_profile: owned("source_profile"),
                credential_source: owned("credential_source"),
                mfa_serial: owned("mfa_serial"),
                external_id: owned("external_id"),
            });
        }
        if ["sso_session", "sso_start_url", "sso_account_id"]
            .iter()
            .any(|k| self.get(k).is_some())
        {
            return Ok(ProfileKind::Sso);
        }
        // botocore reads keys from the credentials file before trying
        // credential_process, and keys from the config file only after it.
        if let Some(kind) = self.keys_in(FileKind::Credentials)? {
            return Ok(kind);
        }
        if self.get("credential_process").is_some() {
            return Ok(ProfileKind::CredentialProcess);
        }
        Ok(self
            .keys_in(FileKind::Config)?
            .unwrap_or(ProfileKind::NoCredentials))
    }

    fn keys_in(&self, kind: FileKind) -> Result<Option<ProfileKind>, FileError> {
        let Some(Layer { path, settings, .. }) = self.layers.iter().find(|l| l.kind == kind) else {
            return Ok(None);
        };
        let partial = |present, missing| FileError::PartialKeys {
            path: path.clone(),
            profile: self.name.clone(),
            present,
            missing,
        };
        match (
            layer_get(settings, ACCESS_KEY_ID),
            layer_get(settings, SECRET_ACCESS_KEY),
        ) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(partial(ACCESS_KEY_ID, SECRET_ACCESS_KEY)),
            (None, Some(_)) => Err(partial(SECRET_ACCESS_KEY, ACCESS_KEY_ID)),
            (Some(_), Some(_))
                if SESSION_TOKENS
                    .iter()
                    .any(|t| layer_get(settings, t).is_some()) =>
            {
                Ok(Some(ProfileKind::SessionToken))
            }
            (Some(_), Some(_)) => Ok(Some(ProfileKind::StaticKeys)),
        }
    }

    /// botocore's test for "this source profile brings its own keys".
    fn has_static_keys(&self) -> bool {
        self.get(ACCESS_KEY_ID).is_some() || self.get(SECRET_ACCESS_KEY).is_some()
    }
}

fn layer_get<'a>(settings: &'a [Setting], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.value.as_str())
        .filter(|v| !v.is_empty())
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Profile");
        s.field("name", &self.name);
        for layer in &self.layers {
            s.field("from", &layer.path)
                .field("settings", &Redacted(&layer.settings));
        }
        s.finish()
    }
}

/// Both files, read together, as the CLI sees them.
#[derive(Debug)]
pub struct Profiles {
    credentials: SharedFile,
    config: SharedFile,
}

impl Profiles {
    /// Reads both files from where the CLI would; `env` looks up environment
    /// variables (pass `&|k| std::env::var(k).ok()` outside tests).
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Profiles, FileError> {
        let credentials = SharedFile::read(FileKind::Credentials, &credentials_path(env)?)?;
        let config = SharedFile::read(FileKind::Config, &config_path(env)?)?;
        Ok(Profiles {
            credentials,
            config,
        })
    }

    pub fn from_files(credentials: SharedFile, config: SharedFile) -> Profiles {
        Profiles {
            credentials,
            config,
        }
    }

    pub fn credentials(&self) -> &SharedFile {
        &self.credentials
    }

    pub fn config(&self) -> &SharedFile {
        &self.config
    }

    /// [`Profiles::names`] for a message: `a, b, c`, or `none`.
    pub fn names_for_message(&self) -> String {
        let names = self.names();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Every profile name in either file, sorted, each once.
    pub fn names(&self) -> Vec<String> {
        let all = self
            .credentials
            .profile_names()
            .chain(self.config.profile_names());
        all.map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<Profile> {
        let layers: Vec<_> = [&self.credentials, &self.config]
            .into_iter()
            .filter_map(|file| {
                let settings = file.section(name)?.settings.clone();
                Some(Layer {
                    kind: file.kind,
                    path: file.path.clone(),
                    settings,
                })
            })
            .collect();
        (!layers.is_empty()).then(|| Profile {
            name: name.to_owned(),
            layers,
        })
    }

    /// The profiles followed to get `name`'s credentials: `name` first, then
    /// each `source_profile` in turn, ending at the one whose keys (or
    /// credential_source, SSO, …) are used. Follows botocore: only the first
    /// profile's `role_arn` beats its own static keys, and a profile may name
    /// itself as source_profile if it has keys.
    pub fn source_chain(&self, name: &str) -> Result<Vec<String>, FileError> {
        let mut current = self.get(name).ok_or_else(|| FileError::NoProfile {
            profile: name.to_owned(),
        })?;
        let mut chain = vec![name.to_owned()];
        loop {
            if chain.len() > 1 && current.has_static_keys() {
                break;
            }
            let ProfileKind::AssumeRole {
                source_profile: Some(source),
                ..
            } = current.kind()?
            else {
                break;
            };
            if source == current.name && current.has_static_keys() {
                break;
            }
            if let Some(at) = chain.iter().position(|n| *n == source) {
                let mut cycle = chain.split_off(at);
                cycle.push(source);
                return Err(FileError::SourceProfileLoop { cycle });
            }
            current = self
                .get(&source)
                .ok_or_else(|| FileError::MissingSourceProfile {
                    profile: current.name.clone(),
                    source_profile: source.clone(),
                })?;
            chain.push(source);
        }
        Ok(chain)
    }

    /// Profiles in the credentials file holding this access key ID, in file
    /// order. Rotating the key must update all of them.
    pub fn holding_key(&self, access_key_id: &str) -> Vec<String> {
        self.credentials.holding_key(access_key_id)
    }

    /// Profiles in the config file holding this access key ID: the AWS CLI
    /// reads keys from there too, so a rotation must update them as well.
    pub fn holding_key_in_config(&self, access_key_id: &str) -> Vec<String> {
        self.config.holding_key(access_key_id)
    }
}

/// Replaces the credentials (or config) file at `path`, atomically, mode
/// 0600 from the first byte, keeping the previous version at `backup`; see
/// [`crate::atomic::write`].
pub fn write_atomically(path: &Path, contents: &[u8], backup: Option<&Path>) -> io::Result<()> {
    crate::atomic::write(path, contents, 0o600, backup)
}

pub use crate::atomic::backup_path;

#[cfg(all(test, unix))]
mod tests;
