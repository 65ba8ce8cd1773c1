//! Keys: a custodian's age X25519 identity (read from their identity file),
//! recipients (public keys, `age1...`), and the requester's one-time key,
//! created at request time and kept in a mode-0600 file on their machine.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::ExposeSecret;

use crate::CustodyError;

/// An age X25519 public key (`age1...`): where a share is sealed to.
#[derive(Clone)]
pub struct Recipient(pub(crate) age::x25519::Recipient);

impl Recipient {
    /// Parses `age1...`; the error says which key was bad.
    pub fn parse(text: &str, whose: &str) -> Result<Recipient, CustodyError> {
        age::x25519::Recipient::from_str(text.trim())
            .map(Recipient)
            .map_err(|e| {
                CustodyError::Invalid(format!(
                    "{whose}: {:?} is not an age X25519 recipient (age1...): {e}",
                    text.trim()
                ))
            })
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.0)
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// A private age X25519 identity (a custodian's, or a one-time key). Its
/// `Debug` shows only the public half.
pub struct CustodianIdentity(pub(crate) age::x25519::Identity);

impl CustodianIdentity {
    /// Reads an age identity file (`age-keygen` output: comments and one
    /// `AGE-SECRET-KEY-1...` line).
    pub fn from_file(path: &Path) -> Result<CustodianIdentity, CustodyError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CustodyError::Io {
                path: path.display().to_string(),
                source,
            }
        })?);
        Self::parse(&text).map_err(|e| CustodyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parses the text of an identity file.
    pub fn parse(text: &str) -> Result<CustodianIdentity, CustodyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .ok_or_else(|| {
                CustodyError::Invalid(
                    "no AGE-SECRET-KEY-1... line: not an age X25519 identity file".into(),
                )
            })?;
        age::x25519::Identity::from_str(line)
            .map(CustodianIdentity)
            .map_err(|e| CustodyError::Invalid(format!("bad age identity: {e}")))
    }

    /// A fresh identity.
    pub fn generate() -> CustodianIdentity {
        CustodianIdentity(age::x25519::Identity::generate())
    }

    /// Its public recipient.
    pub fn recipient(&self) -> Recipient {
        Recipient(self.0.to_public())
    }

    /// The identity file text (`# public key: age1...` and the secret line),
    /// wiped when dropped.
    pub fn file_text(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(format!(
            "# public key: {}\n{}\n",
            self.0.to_public(),
            self.0.to_string().expose_secret()
        ))
    }
}

impl fmt::Debug for CustodianIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CustodianIdentity(public {}, secret redacted)",
            self.0.to_public()
        )
    }
}

/// The requester's one-time key for one request: created when they request
/// a custody entitlement, kept only in `<dir>/<request id>.age` (mode 0600),
/// removed after the secret was opened.
#[derive(Debug)]
pub struct OneTimeKey {
    /// The identity.
    pub identity: CustodianIdentity,
    /// Where it is kept.
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CustodyError + '_ {
    move |source| CustodyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn key_path(dir: &Path, request_id: &str) -> Result<PathBuf, CustodyError> {
    if request_id.is_empty()
        || !request_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(CustodyError::Invalid(format!(
            "{request_id:?} is not a request id"
        )));
    }
    Ok(dir.join(format!("{request_id}.age")))
}

impl OneTimeKey {
    /// Creates and stores a new one-time key for `request_id` under `dir`
    /// (created with mode 0700). The file is created with mode 0600 before
    /// anything is written to it; an existing key is never overwritten.
    pub fn create(dir: &Path, request_id: &str) -> Result<OneTimeKey, CustodyError> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let path = key_path(dir, request_id)?;
        let identity = CustodianIdentity::generate();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(identity.file_text().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))?;
        Ok(OneTimeKey { identity, path })
    }

    /// Loads the one-time key of `request_id` from `dir`.
    pub fn load(dir: &Path, request_id: &str) -> Result<OneTimeKey, CustodyError> {
        let path = key_path(dir, request_id)?;
        if !path.exists() {
            return Err(CustodyError::Invalid(format!(
                "no one-time key for {request_id} at {}: only the machine that made the request (twokey custody request) can open it",
                path.display()
            )));
        }
        let identity = CustodianIdentity::from_file(&path)?;
        Ok(OneTimeKey { identity, path })
    }

    /// Removes the key file (after the secret was opened).
    pub fn remove(self) -> Result<(), CustodyError> {
        std::fs::remove_file(&self.path).map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_key_file_is_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let k = OneTimeKey::create(&dir.path().join("custody"), "req-abc").expect("create");
        let mode = std::fs::metadata(&k.path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = OneTimeKey::load(&dir.path().join("custody"), "req-abc").expect("load");
        assert_eq!(again.identity.recipient(), k.identity.recipient());
        assert!(OneTimeKey::create(&dir.path().join("custody"), "req-abc").is_err());
        assert!(OneTimeKey::create(dir.path(), "../x").is_err());
        assert!(!format!("{k:?}").contains("AGE-SECRET-KEY"));
    }
}
