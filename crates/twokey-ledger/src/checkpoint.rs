//! Signed checkpoints: the C2SP `tlog-checkpoint` body inside a C2SP
//! `signed-note`, signed with Ed25519.
//!
//! A note is `body`, an empty line, then one line per signature:
//!
//! ```text
//! twokey.example/ledger          <- origin
//! 50                             <- tree size, decimal
//! qwe...base64 root...=          <- root hash, standard base64
//!                                <- (optional extension lines, then) blank line
//! — twokey.example/ledger AbCd...base64(key id || signature)...
//! ```
//!
//! The signature covers the body bytes, final newline included. The key id is
//! the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public key)`, the same
//! as Go's `golang.org/x/mod/sumdb/note`, whose key strings this module also
//! reads and writes:
//!
//! - verifier key: `name+<key id, 8 hex digits>+<base64(0x01 || public key)>`
//! - signer key: `PRIVATE+KEY+name+<key id>+<base64(0x01 || 32-byte seed)>`
//!
//! A note can carry any number of signatures (witness cosignatures); a
//! verifier looks for the one from its own key and ignores the rest.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Algorithm byte for Ed25519 in signed-note keys.
const ALG_ED25519: u8 = 0x01;
/// Prefix of a signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint, note or key could not be read, made or verified.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint body is malformed.
    #[error("malformed checkpoint: {0}")]
    Body(String),
    /// The note around it is malformed.
    #[error("malformed signed note: {0}")]
    Note(String),
    /// A key string or key file is malformed.
    #[error("malformed key: {0}")]
    Key(String),
    /// The note has no signature from the expected key.
    #[error("checkpoint signed by unknown key {found}; expected a signature by {expected}")]
    UnknownKey {
        /// The expected verifier, `name+keyid`.
        expected: String,
        /// The signers present, `name+keyid`, comma-separated (or `nobody`).
        found: String,
    },
    /// A signature from the expected key is present but invalid.
    #[error("checkpoint signature by {0} is invalid: the checkpoint was altered or forged")]
    BadSignature(String),
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// The content of a checkpoint: which log, how many entries, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique identifier of the log, e.g. `twokey.example.com/ledger`.
    pub origin: String,
    /// Number of entries the root covers.
    pub size: u64,
    /// RFC 6962 root of the first `size` entries.
    pub root: Hash,
    /// Optional extension lines (without newline), kept verbatim.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note body: `origin\nsize\nbase64(root)\n` then extension lines.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a note body in the `tlog-checkpoint` format.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::Body(m.to_string());
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad("body does not end with a newline"));
        };
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("empty origin line"));
        }
        let size_line = lines.next().ok_or_else(|| bad("missing tree size line"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad(&format!(
                "tree size {size_line:?} is not a decimal number"
            )));
        }
        let size: u64 = size_line
            .parse()
            .map_err(|_| bad(&format!("tree size {size_line:?} is too large")))?;
        let root_line = lines.next().ok_or_else(|| bad("missing root hash line"))?;
        let root_bytes = B64
            .decode(root_line)
            .map_err(|e| bad(&format!("root hash is not base64: {e}")))?;
        let root: Hash = root_bytes
            .try_into()
            .map_err(|_| bad("root hash is not 32 bytes"))?;
        let mut extensions = Vec::new();
        for l in lines {
            if l.is_empty() {
                return Err(bad("empty extension line"));
            }
            extensions.push(l.to_string());
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// One signature line of a signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (first 4 bytes of the key hash, big-endian).
    pub key_id: u32,
    /// Signature bytes after the key id (64 bytes for Ed25519).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }
}

/// A signed note: text body and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline.
    pub body: String,
    /// Signatures in the order they appear.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses note text: body, blank line, one or more signature lines.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |m: String| CheckpointError::Note(m);
        let split = text
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line between body and signatures".into()))?;
        let body = &text[..split + 1];
        let sigs = &text[split + 2..];
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(bad("signature block does not end with a newline".into()));
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
                bad(format!(
                    "line {line:?} is not a signature line (— name sig)"
                ))
            })?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad(format!("signature line {line:?} has no signature")))?;
            check_key_name(name).map_err(|e| bad(e.to_string()))?;
            let raw = B64
                .decode(b64)
                .map_err(|e| bad(format!("signature by {name} is not base64: {e}")))?;
            if raw.len() < 5 {
                return Err(bad(format!("signature by {name} is too short")));
            }
            let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id,
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(bad("no signatures".into()));
        }
        Ok(Self {
            body: body.to_string(),
            signatures,
        })
    }

    /// The note as text: body, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut s = self.body.clone();
        s.push('\n');
        for sig in &self.signatures {
            let mut raw = sig.key_id.to_be_bytes().to_vec();
            raw.extend_from_slice(&sig.signature);
            s.push_str(SIG_PREFIX);
            s.push_str(&sig.name);
            s.push(' ');
            s.push_str(&B64.encode(raw));
            s.push('\n');
        }
        s
    }

    /// Adds (or replaces) the signature of `signer`: how a witness cosigns.
    pub fn add_signature(&mut self, signer: &NoteSigner) {
        let sig = signer.sign_raw(self.body.as_bytes());
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }
}

impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(CheckpointError::Key(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 note signer: the ledger's checkpoint key.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        write!(f, "NoteSigner({}+{:08x})", self.name, self.key_id)
    }
}

impl NoteSigner {
    /// A new random key named `name` (OS randomness).
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Ok(Self::from_signing_key(name, key))
    }

    /// A signer from an existing 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        Ok(Self::from_signing_key(name, SigningKey::from_bytes(seed)))
    }

    fn from_signing_key(name: &str, key: SigningKey) -> Self {
        let key_id = key_id(name, &key.verifying_key());
        Self {
            name: name.to_string(),
            key_id,
            key,
        }
    }

    /// Parses `PRIVATE+KEY+name+keyid+base64(0x01||seed)` (Go note format).
    pub fn from_key_string(s: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::Key(m.to_string());
        let rest = s
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("signer key does not start with PRIVATE+KEY+"))?;
        // The base64 key material may itself contain '+'; names cannot.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("signer key is not PRIVATE+KEY+name+keyid+key"));
        };
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("signer key material is not base64"))?;
        let Some((&ALG_ED25519, seed)) = raw.split_first() else {
            return Err(bad("signer key is not an Ed25519 key"));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("Ed25519 seed is not 32 bytes"))?;
        let signer = Self::from_seed(name, &seed)?;
        if format!("{:08x}", signer.key_id) != id {
            return Err(bad("signer key id does not match its key"));
        }
        Ok(signer)
    }

    /// The private key string (`PRIVATE+KEY+...`); keep it secret.
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            B64.encode(raw)
        )
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier (public key).
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    fn sign_raw(&self, msg: &[u8]) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: self.key.sign(msg).to_bytes().to_vec(),
        }
    }

    /// Signs a checkpoint, giving the signed-note text to publish.
    pub fn sign_checkpoint(&self, cp: &Checkpoint) -> String {
        let body = cp.body();
        let sig = self.sign_raw(body.as_bytes());
        SignedNote {
            body,
            signatures: vec![sig],
        }
        .to_text()
    }
}

/// An Ed25519 note verifier: what an auditor holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `name+keyid+base64(0x01||public key)` (Go note format).
    pub fn parse(s: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::Key(m.to_string());
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("verifier key is not name+keyid+key"));
        };
        check_key_name(name)?;
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("verifier key material is not base64"))?;
        let Some((&ALG_ED25519, public)) = raw.split_first() else {
            return Err(bad("verifier key is not an Ed25519 key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("Ed25519 public key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| bad("Ed25519 public key is not a valid point"))?;
        let key_id = key_id(name, &key);
        if format!("{key_id:08x}") != id {
            return Err(bad("verifier key id does not match its key"));
        }
        Ok(Self {
            name: name.to_string(),
            key_id,
            key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+keyid`, the short label used in messages.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Verifies `note` carries a valid signature by this key (other
    /// signatures are ignored) and parses its checkpoint body.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let note = SignedNote::parse(note)?;
        let mine = note
            .signatures
            .iter()
            .find(|s| s.name == self.name && s.key_id == self.key_id);
        let Some(sig) = mine else {
            let found: Vec<String> = note.signatures.iter().map(NoteSignature::label).collect();
            return Err(CheckpointError::UnknownKey {
                expected: self.label(),
                found: if found.is_empty() {
                    "nobody".into()
                } else {
                    found.join(", ")
                },
            });
        };
        let sig_bytes: [u8; 64] = sig
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| CheckpointError::BadSignature(self.label()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
        self.key
            .verify_strict(note.body.as_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature(self.label()))?;
        Checkpoint::parse_body(&note.body)
    }
}

impl fmt::Display for NoteVerifier {
    /// `name+keyid+base64(0x01||public key)`: the text `twokey audit public-key` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, B64.encode(raw))
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates a new key file at `path` (mode 0600, refuses to overwrite) holding
/// a fresh signer key named `name`, and returns the signer.
pub fn generate_key_file(path: &Path, name: &str) -> Result<NoteSigner, CheckpointError> {
    use std::os::unix::fs::OpenOptionsExt;
    let signer = NoteSigner::generate(name)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(format!("{}\n", signer.to_key_string()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(path, e))?;
    Ok(signer)
}

/// Loads a signer key file, refusing one that group or others can read.
pub fn load_key_file(path: &Path) -> Result<NoteSigner, CheckpointError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CheckpointError::Key(format!(
            "{}: key file is accessible to other users (mode {mode:o}); run chmod 600",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    NoteSigner::from_key_string(&text)
        .map_err(|e| CheckpointError::Key(format!("{}: {e}", path.display())))
}

/// Loads the key file at `path`, generating it (named `name`) on first start.
pub fn load_or_generate_key_file(path: &Path, name: &str) -> Result<NoteSigner, CheckpointError> {
    if path.exists() {
        load_key_file(path)
    } else {
        generate_key_file(path, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("twokey.test/ledger", &[7; 32]).unwrap()
    }

    #[test]
    fn checkpoint_round_trips_and_verifies() {
        let s = signer();
        let mut cp = Checkpoint::new("twokey.test/ledger", 50, [9; 32]);
        cp.extensions.push("ext line".into());
        let note = s.sign_checkpoint(&cp);
        assert!(note.starts_with("twokey.test/ledger\n50\nCQkJ"));
        assert!(note.contains("\n\n\u{2014} twokey.test/ledger "));
        let v = NoteVerifier::parse(&s.verifier().to_string()).unwrap();
        assert_eq!(v.verify_checkpoint(&note).unwrap(), cp);
        let again = NoteSigner::from_key_string(&s.to_key_string()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
    }

    #[test]
    fn go_note_vectors() {
        // From golang.org/x/mod/sumdb/note: the documented example key pair.
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let v = NoteVerifier::parse(vkey).unwrap();
        let s = NoteSigner::from_key_string(skey).unwrap();
        assert_eq!(s.verifier(), v);
        assert_eq!(v.to_string(), vkey);
        let msg = "If you think cryptography is the answer to your problem,\n\
                   then you don't know what your problem is.\n\n\
                   \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let note = SignedNote::parse(msg).unwrap();
        let mut ours = SignedNote {
            body: note.body.clone(),
            signatures: vec![],
        };
        ours.add_signature(&s);
        assert_eq!(ours.to_text(), msg, "Ed25519 is deterministic");
    }

    #[test]
    fn cosignatures_and_unknown_keys() {
        let s = signer();
        let witness = NoteSigner::from_seed("witness.example", &[8; 32]).unwrap();
        let cp = Checkpoint::new("twokey.test/ledger", 3, [1; 32]);
        let mut note = SignedNote::parse(&s.sign_checkpoint(&cp)).unwrap();
        note.add_signature(&witness);
        let text = note.to_text();
        assert_eq!(s.verifier().verify_checkpoint(&text).unwrap(), cp);
        assert_eq!(witness.verifier().verify_checkpoint(&text).unwrap(), cp);
        let other = NoteSigner::from_seed("twokey.test/ledger", &[3; 32]).unwrap();
        let err = other
            .verifier()
            .verify_checkpoint(&s.sign_checkpoint(&cp))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("checkpoint signed by unknown key twokey.test/ledger+"),
            "{err}"
        );
    }

    #[test]
    fn tampered_and_malformed_notes_are_refused() {
        let s = signer();
        let v = s.verifier();
        let note = s.sign_checkpoint(&Checkpoint::new("o", 5, [2; 32]));
        let tampered = note.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            v.verify_checkpoint(&tampered),
            Err(CheckpointError::BadSignature(_))
        ));
        for bad in [
            "",
            "o\n5\n",
            "o\n5\nAA==\n\n\u{2014} o\n",
            "o\n5\nAA==\n\n- o AAAA\n",
        ] {
            assert!(v.verify_checkpoint(bad).is_err(), "{bad:?}");
        }
        for body in [
            "o\n05\nAA==\n",
            "o\nx\nAA==\n",
            "\n5\nAA==\n",
            "o\n5\nAA==\n",
            "o\n5\n",
        ] {
            assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn key_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("twokey-ledger-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.key");
        let s = load_or_generate_key_file(&path, "twokey.test/ledger").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_key_file(&path).unwrap().verifier(), s.verifier());
        assert!(generate_key_file(&path, "x").is_err(), "never overwrites");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_key_file(&path)
            .unwrap_err()
            .to_string()
            .contains("chmod 600"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
