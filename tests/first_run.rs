//! A first run, as a new user meets rekey (issue 9, item 5): a system cron
//! job rewriting a user's file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::rotate::Dev;
use crate::support::{code, stderr, stdout};

/// An owner nobody on the test machine logs in as (`nobody:nogroup`).
const OTHER: u32 = 65534;

#[tokio::test]
async fn issue9_5_a_rotation_by_root_keeps_the_owner_of_the_users_files() {
    let dev = Dev::new(100).await;
    let aws_dir = dev.home.path().join(".aws");
    // The user's own directory and files, as `rekey rotate` run from a
    // system crontab (as root) finds them.
    for path in [
        aws_dir.clone(),
        dev.home.credentials_path(),
        dev.home.config_path(),
    ] {
        std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER))
            .expect("chown to 65534:65534: the suite runs as root, as CI does");
    }

    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_ne!(dev.held("dev").access_key_id, dev.key.access_key_id);

    // The credentials file, its backup and anything else rekey left next
    // to them still belong to the user; the files holding keys stay 0600.
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&aws_dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OTHER, OTHER),
            "{} changed owner",
            path.display()
        );
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        seen.iter().any(|n| n == "credentials.rekey-backup"),
        "{seen:?}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dev.home.credentials_path()), 0o600);
    assert_eq!(mode(&aws_dir.join("credentials.rekey-backup")), 0o600);
}
