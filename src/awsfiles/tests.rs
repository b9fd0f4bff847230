use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NEW_KEY: &str = "AKIAI44QH8DHBEXAMPLE";
const NEW_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

fn creds(text: &str) -> SharedFile {
    SharedFile::parse(Path::new("/h/.aws/credentials"), text).unwrap()
}

fn config(text: &str) -> SharedFile {
    SharedFile::parse_as(FileKind::Config, Path::new("/h/.aws/config"), text).unwrap()
}

fn profiles(credentials: &str, config_text: &str) -> Profiles {
    Profiles::from_files(creds(credentials), config(config_text))
}

/// A directory removed on drop (the main crate has no tempfile dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("awsfiles-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const GNARLY: &str = "# managed by hand\r\n\
    ; another comment style\n\
    \n\
    [default]\r\n\
    aws_access_key_id=AKIAIOSFODNN7EXAMPLE\r\n\
    AWS_Secret_Access_Key =\twJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY  \r\n\
    region = eu-west-1\t\n\
    s3 =\n  max_concurrent_requests = 20\n\n\t# comment inside\n  addressing_style = path\n  \n\
    [profile dev]  \n\
    role_arn: arn:aws:iam::123456789012:role/dev\n\
    source_profile = default\n\
    \n\
    [sso-session corp]\n\
    sso_start_url = https://example.awsapps.com/start\n\
    [services local]\n\
    sts =\n\tendpoint_url = http://localhost:5000\n\
    credential_process = tool\n    --flag";

#[test]
fn round_trip_keeps_every_byte() {
    assert_eq!(config(GNARLY).to_string(), GNARLY);
    assert_eq!(creds(GNARLY).to_string(), GNARLY);
    assert_eq!(creds("").to_string(), "");
    assert_eq!(creds("[a]\nk = v\n").to_string(), "[a]\nk = v\n");
}

#[test]
fn values_are_read_as_botocore_reads_them() {
    let p = Profiles::from_files(creds(""), config(GNARLY));
    assert_eq!(p.names(), ["default", "dev"]);
    let default = p.get("default").unwrap();
    assert_eq!(default.get("aws_secret_access_key"), Some(SECRET));
    assert_eq!(default.get("AWS_ACCESS_KEY_ID"), Some(KEY));
    assert_eq!(default.region(), Some("eu-west-1"));
    assert_eq!(
        default.get("s3"),
        Some("\nmax_concurrent_requests = 20\naddressing_style = path")
    );
    let dev = p.get("dev").unwrap();
    assert_eq!(
        dev.get("role_arn"),
        Some("arn:aws:iam::123456789012:role/dev")
    );
}

#[test]
fn malformed_lines_are_named() {
    use Malformed::*;
    let cases: &[(FileKind, &str, usize, Malformed)] = &[
        (FileKind::Credentials, "\u{feff}[a]\n", 1, ByteOrderMark),
        (
            FileKind::Config,
            "\u{feff}# c\n[default]\n",
            1,
            ByteOrderMark,
        ),
        (
            FileKind::Credentials,
            "# c\nk = v\n[a]\n",
            2,
            SettingBeforeSection,
        ),
        (FileKind::Credentials, "[a]\nk = v\njunk\n", 3, NotASetting),
        (FileKind::Credentials, "[a]\n= v\n", 2, NotASetting),
        (FileKind::Credentials, "[a]\n[b\n", 2, UnterminatedSection),
        (FileKind::Credentials, "[ ]\n", 1, EmptyName),
        (FileKind::Config, "[profile ]\n", 1, EmptyName),
        (FileKind::Config, "[profile]\n", 1, EmptyName),
        (
            FileKind::Credentials,
            "[a]\n\n[b]\n[a]\n",
            4,
            DuplicateSection {
                name: "a".into(),
                first: 1,
            },
        ),
        (
            FileKind::Config,
            "[default]\n[profile default]\n",
            2,
            DuplicateSection {
                name: "profile default".into(),
                first: 1,
            },
        ),
        (
            FileKind::Config,
            "[sso-session x]\n[sso-session x]\n",
            2,
            DuplicateSection {
                name: "sso-session x".into(),
                first: 1,
            },
        ),
        (
            FileKind::Credentials,
            "[a]\nK = 1\nk = 2\n",
            3,
            DuplicateKey {
                key: "k".into(),
                first: 2,
            },
        ),
        (
            FileKind::Config,
            "[default]\ns3 =\n  oops\n",
            3,
            SubSettingWithoutEquals,
        ),
    ];
    for (kind, text, line, what) in cases {
        match SharedFile::parse_as(*kind, Path::new("/f"), text) {
            Err(FileError::Malformed {
                path,
                line: l,
                what: w,
            }) => {
                assert_eq!(
                    (path.as_path(), l, &w),
                    (Path::new("/f"), *line, what),
                    "{text:?}"
                );
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    // Not errors: a `[profile x]` in the credentials file and `[profile x]`
    // next to `[x]` in the config file are different sections.
    SharedFile::parse(Path::new("/f"), "[profile x]\n[x]\n").unwrap();
    SharedFile::parse_as(FileKind::Config, Path::new("/f"), "[profile x]\n[x]\n").unwrap();
}

#[test]
fn names_merge_both_files_by_the_cli_naming() {
    let p = profiles(
        "[default]\n[b]\n[profile q]\n",
        "[profile default]\n[profile b]\n[a]\n[profile c]\n[sso-session s]\n",
    );
    assert_eq!(p.names(), ["b", "c", "default", "profile q"]);
    assert!(p.get("a").is_none());
    assert!(p.get("nope").is_none());
}

#[test]
fn credentials_file_wins_for_the_same_key() {
    let p = profiles(
        "[dev]\nregion = us-east-1\n",
        "[profile dev]\nregion = eu-west-1\noutput = json\nendpoint_url = http://localhost:5000\n",
    );
    let dev = p.get("dev").unwrap();
    assert_eq!(dev.name(), "dev");
    assert_eq!(dev.region(), Some("us-east-1"));
    assert_eq!(dev.get("output"), Some("json"));
    assert_eq!(dev.endpoint_url(), Some("http://localhost:5000"));
    assert_eq!(dev.mfa_serial(), None);
}

#[test]
fn kinds() {
    let p = profiles(
        &format!(
            "[static]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n\
             [temp]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\naws_session_token = T\n\
             [blank-token]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\naws_session_token =\n\
             [keys-and-process]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        ),
        &format!(
            "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = static\n\
             mfa_serial = arn:aws:iam::1:mfa/me\nexternal_id = x\n\
             [profile ec2]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Ec2InstanceMetadata\n\
             [profile sso]\nsso_session = corp\nsso_account_id = 1\n\
             [profile legacy-sso]\nsso_start_url = https://x\n\
             [profile proc]\ncredential_process = tool\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n\
             [profile keys-and-process]\ncredential_process = tool\n\
             [profile web]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t\n\
             [profile bare]\nregion = eu-west-1\n"
        ),
    );
    let kind = |name: &str| p.get(name).unwrap().kind().unwrap();
    assert_eq!(kind("static"), ProfileKind::StaticKeys);
    assert_eq!(kind("temp"), ProfileKind::SessionToken);
    assert_eq!(kind("blank-token"), ProfileKind::StaticKeys);
    assert_eq!(
        kind("role"),
        ProfileKind::AssumeRole {
            role_arn: "arn:aws:iam::1:role/r".into(),
            source_profile: Some("static".into()),
            credential_source: None,
            mfa_serial: Some("arn:aws:iam::1:mfa/me".into()),
            external_id: Some("x".into()),
        }
    );
    assert!(matches!(
        kind("ec2"),
        ProfileKind::AssumeRole {
            source_profile: None,
            credential_source: Some(_),
            ..
        }
    ));
    assert_eq!(kind("sso"), ProfileKind::Sso);
    assert_eq!(kind("legacy-sso"), ProfileKind::Sso);
    // botocore tries credential_process before keys in the config file,
    // but after keys in the credentials file.
    assert_eq!(kind("proc"), ProfileKind::CredentialProcess);
    assert_eq!(kind("keys-and-process"), ProfileKind::StaticKeys);
    assert_eq!(kind("web"), ProfileKind::WebIdentity);
    assert_eq!(kind("bare"), ProfileKind::NoCredentials);
    assert_eq!(
        p.get("role").unwrap().mfa_serial(),
        Some("arn:aws:iam::1:mfa/me")
    );
}

#[test]
fn half_a_key_pair_is_an_error_naming_file_and_profile() {
    let p = profiles(
        &format!("[a]\naws_access_key_id = {KEY}\n[b]\naws_secret_access_key = {SECRET}\n"),
        &format!("[profile c]\naws_access_key_id = {KEY}\n"),
    );
    for (name, path, missing) in [
        ("a", "/h/.aws/credentials", SECRET_ACCESS_KEY),
        ("b", "/h/.aws/credentials", ACCESS_KEY_ID),
        ("c", "/h/.aws/config", SECRET_ACCESS_KEY),
    ] {
        match p.get(name).unwrap().kind() {
            Err(FileError::PartialKeys {
                path: p,
                profile,
                missing: m,
                ..
            }) => {
                assert_eq!(
                    (p.as_path(), profile.as_str(), m),
                    (Path::new(path), name, missing)
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn source_chain_follows_links_to_the_keys() {
    let keys = format!("aws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n");
    let p = profiles(
        &format!("[base]\n{keys}[self]\nrole_arn = arn:r\nsource_profile = self\n{keys}"),
        &format!(
            "[profile top]\nrole_arn = arn:r\nsource_profile = mid\n{keys}\
             [profile mid]\nrole_arn = arn:r\nsource_profile = base\n\
             [profile base]\nrole_arn = arn:r\nsource_profile = top\n\
             [profile a]\nrole_arn = arn:r\nsource_profile = b\n\
             [profile b]\nrole_arn = arn:r\nsource_profile = c\n\
             [profile c]\nrole_arn = arn:r\nsource_profile = a\n\
             [profile lost]\nrole_arn = arn:r\nsource_profile = gone\n\
             [profile me]\nrole_arn = arn:r\nsource_profile = me\n"
        ),
    );
    // Past the first profile, keys beat role_arn (base); in the first, role_arn wins.
    assert_eq!(p.source_chain("top").unwrap(), ["top", "mid", "base"]);
    assert_eq!(p.source_chain("base").unwrap(), ["base", "top"]);
    assert_eq!(p.source_chain("self").unwrap(), ["self"]);
    match p.source_chain("a") {
        Err(e @ FileError::SourceProfileLoop { .. }) => {
            assert_eq!(
                e.to_string(),
                "source_profile links form a loop: a -> b -> c -> a"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(p.source_chain("me"), Err(FileError::SourceProfileLoop { cycle }) if cycle == ["me", "me"])
    );
    assert!(matches!(
        p.source_chain("lost"),
        Err(FileError::MissingSourceProfile { profile, source_profile }) if profile == "lost" && source_profile == "gone"
    ));
    assert!(matches!(
        p.source_chain("none"),
        Err(FileError::NoProfile { .. })
    ));
}

#[test]
fn holding_key_lists_every_profile_sharing_it() {
    let p = profiles(
        &format!(
            "[one]\naws_access_key_id = {KEY}\n[other]\naws_access_key_id = {NEW_KEY}\n\
             [two]\naws_access_key_id={KEY}\n"
        ),
        &format!("[profile three]\naws_access_key_id = {KEY}\n"),
    );
    assert_eq!(p.holding_key(KEY), ["one", "two"]);
    assert!(p.holding_key("AKIANOTHEREEXAMPLE00").is_empty());
}

#[test]
fn set_keys_changes_exactly_the_two_values() {
    let before = format!(
        "# keep\r\n[other]\r\naws_access_key_id = {KEY}\r\naws_secret_access_key = {SECRET}\r\n\
         [dev]\r\nAWS_ACCESS_KEY_ID={KEY}  \r\nregion = eu-west-1\r\naws_secret_access_key =\t{SECRET}\r\n"
    );
    let mut file = creds(&before);
    file.set_keys("dev", NEW_KEY, NEW_SECRET).unwrap();
    let after = file.to_string();
    let changed: Vec<_> = before
        .split('\n')
        .zip(after.split('\n'))
        .filter(|(b, a)| b != a)
        .collect();
    assert_eq!(
        changed,
        [
            (
                format!("AWS_ACCESS_KEY_ID={KEY}  \r").as_str(),
                format!("AWS_ACCESS_KEY_ID={NEW_KEY}  \r").as_str()
            ),
            (
                format!("aws_secret_access_key =\t{SECRET}\r").as_str(),
                format!("aws_secret_access_key =\t{NEW_SECRET}\r").as_str()
            ),
        ]
    );
    assert_eq!(before.len(), after.len());
    // The index follows the edit, and the result parses to the same thing.
    let reparsed = Profiles::from_files(creds(&after), config(""));
    assert_eq!(
        reparsed.get("dev").unwrap().get(ACCESS_KEY_ID),
        Some(NEW_KEY)
    );
    assert_eq!(reparsed.holding_key(KEY), ["other"]);
    let p = Profiles::from_files(file, config(""));
    assert_eq!(
        p.get("dev").unwrap().get(SECRET_ACCESS_KEY),
        Some(NEW_SECRET)
    );
}

#[test]
fn set_keys_refuses_and_changes_nothing() {
    let text = format!(
        "[dev]\naws_access_key_id = {KEY}\n[half]\naws_access_key_id = {KEY}\n\
         [wrapped]\naws_access_key_id = {KEY}\naws_secret_access_key = wJalr\n  {SECRET}\n"
    );
    let mut file = creds(&text);
    let err = file.set_keys("prod", NEW_KEY, NEW_SECRET).unwrap_err();
    assert!(matches!(err, FileError::NoSuchProfile { ref profile, .. } if profile == "prod"));
    let err = file.set_keys("half", NEW_KEY, NEW_SECRET).unwrap_err();
    assert!(
        matches!(
            err,
            FileError::MissingKey {
                line: 3,
                key: SECRET_ACCESS_KEY,
                ..
            }
        ),
        "{err:?}"
    );
    let err = file.set_keys("wrapped", NEW_KEY, NEW_SECRET).unwrap_err();
    assert!(
        matches!(err, FileError::MultiLineValue { line: 7, .. }),
        "{err:?}"
    );
    let err = file.set_keys("dev", NEW_KEY, "two words").unwrap_err();
    assert!(matches!(
        err,
        FileError::BadNewValue {
            key: SECRET_ACCESS_KEY
        }
    ));
    assert_eq!(file.to_string(), text);
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let text = format!(
        "[dev]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\naws_session_token = TOKENEXAMPLE\n"
    );
    let mut file = creds(&text);
    let p = Profiles::from_files(creds(&text), config(""));
    let err = file
        .set_keys("dev", NEW_KEY, &format!("{NEW_SECRET} x"))
        .unwrap_err();
    let printed = format!(
        "{file:?} {file:#?} {p:?} {:?} {err} {err:?}",
        p.get("dev").unwrap()
    );
    for secret in [SECRET, "TOKENEXAMPLE", NEW_SECRET] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(
        printed.contains(KEY),
        "non-secret values still show: {printed}"
    );
    let bad = SharedFile::parse(Path::new("/f"), &format!("[a]\n{SECRET}\n")).unwrap_err();
    assert!(!format!("{bad} {bad:?}").contains(SECRET));
}

#[test]
fn locates_files_as_the_cli_does() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let home = env(&[("HOME", "/home/u")]);
    assert_eq!(
        credentials_path(&home).unwrap(),
        Path::new("/home/u/.aws/credentials")
    );
    assert_eq!(
        config_path(&home).unwrap(),
        Path::new("/home/u/.aws/config")
    );
    let set = env(&[
        ("HOME", "/home/u"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
        ("AWS_CONFIG_FILE", "/etc/aws"),
    ]);
    assert_eq!(credentials_path(&set).unwrap(), Path::new("/home/u/creds"));
    assert_eq!(config_path(&set).unwrap(), Path::new("/etc/aws"));
    let nothing = env(&[("AWS_CONFIG_FILE", "")]);
    assert!(matches!(
        config_path(&nothing),
        Err(FileError::NoHome {
            variable: "AWS_CONFIG_FILE"
        })
    ));
}

#[test]
fn load_reads_both_files_and_tolerates_missing_ones() {
    let dir = TempDir::new();
    let home = dir.0.to_str().unwrap().to_owned();
    let env = move |k: &str| (k == "HOME").then(|| home.clone());
    assert!(Profiles::load(&env).unwrap().names().is_empty());
    fs::create_dir_all(dir.0.join(".aws/credentials")).unwrap();
    assert!(matches!(Profiles::load(&env), Err(FileError::Read { .. })));
    fs::remove_dir(dir.0.join(".aws/credentials")).unwrap();
    fs::write(dir.0.join(".aws/credentials"), "[a]\n").unwrap();
    fs::write(dir.0.join(".aws/config"), "[profile b]\n").unwrap();
    assert_eq!(Profiles::load(&env).unwrap().names(), ["a", "b"]);
}

#[test]
fn write_atomically_keeps_a_private_backup() {
    let dir = TempDir::new();
    let path = dir.0.join("credentials");
    let backup = backup_path(&path);
    assert_eq!(backup, dir.0.join("credentials.rekey-backup"));

    write_atomically(&path, b"first", Some(&backup)).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"first");
    assert!(!backup.exists(), "nothing to back up the first time");

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    write_atomically(&path, b"second", Some(&backup)).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second");
    assert_eq!(fs::read(&backup).unwrap(), b"first");
    assert_eq!((mode(&path), mode(&backup)), (0o600, 0o600));

    let mut left: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["credentials", "credentials.rekey-backup"],
        "no temp files left"
    );
}

#[test]
fn write_atomically_writes_through_a_symlink() {
    let dir = TempDir::new();
    fs::create_dir_all(dir.0.join("dotfiles")).unwrap();
    fs::create_dir_all(dir.0.join(".aws")).unwrap();
    let real = dir.0.join("dotfiles/credentials");
    let link = dir.0.join(".aws/credentials");
    fs::write(&real, "old").unwrap();
    symlink("../dotfiles/credentials", &link).unwrap();

    write_atomically(&link, b"new", Some(&backup_path(&link))).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&real).unwrap(), b"new");
    assert_eq!(mode(&real), 0o600);
    assert_eq!(fs::read(backup_path(&link)).unwrap(), b"old");
}

#[test]
fn headers_the_rust_sdk_reads_as_comments_are_found_with_their_line() {
    let text = "[default]\naws_access_key_id = A\n# a comment [x#y]\n[dev#1]\nk = v\n[profile a;b]\n[ok]\n";
    assert_eq!(
        sdk_unreadable_headers(text),
        vec![(4, "[dev#1]".to_string()), (6, "[profile a;b]".to_string())]
    );
    assert!(sdk_unreadable_headers("[default]\nkey = a#b\n").is_empty());
}
