//! Files a page hands to a later request — an upload waiting for its confirmation, the
//! rejected rows of an upload waiting for their download. They hold names and phone numbers,
//! so they live in a folder of the system's temporary directory that only the service's user
//! may enter, named by a random token (the link is the only way to one), and are removed once
//! taken or expired.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct TempArea {
    folder: &'static str,
    ttl: Duration,
}

impl TempArea {
    pub const fn new(folder: &'static str, ttl: Duration) -> TempArea {
        TempArea { folder, ttl }
    }

    pub fn dir(&self) -> PathBuf {
        std::env::temp_dir().join(self.folder)
    }

    /// The folder, private to the service's user (made so, or narrowed when an older build
    /// left it open), with expired files removed on the way; and a new random token.
    pub fn new_token(&self) -> std::io::Result<String> {
        use rand::Rng;
        let dir = self.dir();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(&dir)?.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if !self.fresh(&entry.path()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        Ok(hex::encode(raw))
    }

    /// Whether the file at `path` is younger than the area's lifetime.
    pub fn fresh(&self, path: &Path) -> bool {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age <= self.ttl)
    }

    /// A token as [`TempArea::new_token`] makes them (32 hex digits): nothing else names a file.
    pub fn valid_token(token: &str) -> bool {
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
    }
}
