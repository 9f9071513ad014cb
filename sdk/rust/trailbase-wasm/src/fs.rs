//! Files under `trail run --runtime-root-fs DIR`, read-only: `read_file("/data/x.json")` is
//! `DIR/data/x.json`. `..` never leaves DIR; a symbolic link leading outside it is refused.

use std::fmt;

use crate::abi;

/// Why a file could not be read: `code` is `ENOENT`, `EACCES` (outside the root), `EISDIR`,
/// `EFBIG`, `EINVAL`, `EIO` or `ENOSYS` (no root directory configured); `message` is trail's,
/// naming the path.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub code: String,
    pub message: String,
}

/// `CODE: message` (`ENOENT: no such file or directory: '/x.json'`).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.starts_with(self.code.as_str()) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// The code of trail's message: trail's compiled ABI hands over the message alone, which names
/// the condition in words (or, for ENOSYS, by its code).
fn code_of(message: &str) -> &'static str {
    const WORDS: [(&str, &str); 11] = [
        ("ENOSYS", "ENOSYS"),
        ("no such file", "ENOENT"),
        ("leaves the filesystem root", "EACCES"),
        ("access denied", "EACCES"),
        ("Permission denied", "EACCES"),
        ("not a regular file", "EISDIR"),
        ("Is a directory", "EISDIR"),
        ("read limit", "EFBIG"),
        ("path is", "EINVAL"),
        ("path contains a NUL", "EINVAL"),
        ("Linux 5.6", "ENOSYS"),
    ];
    WORDS
        .iter()
        .find(|(w, _)| message.contains(w))
        .map_or("EIO", |(_, code)| code)
}

/// The whole file at `path` (absolute, inside the root directory).
pub async fn read_file(path: impl AsRef<str>) -> Result<Vec<u8>, Error> {
    abi::read_file(path.as_ref())
        .await
        .map_err(|message| Error {
            code: code_of(&message).to_string(),
            message,
        })
}

/// The file at `path` as UTF-8 text (invalid sequences become U+FFFD).
pub async fn read_to_string(path: impl AsRef<str>) -> Result<String, Error> {
    let bytes = read_file(path).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_messages() {
        assert_eq!(code_of("no such file or directory: '/x'"), "ENOENT");
        assert_eq!(
            code_of("path leaves the filesystem root: '/../x'"),
            "EACCES"
        );
        assert_eq!(code_of("not a regular file: '/d'"), "EISDIR");
        assert_eq!(
            code_of("'/big' is larger than the 10-byte read limit"),
            "EFBIG"
        );
        assert_eq!(code_of("ENOSYS: no filesystem is enabled"), "ENOSYS");
        assert_eq!(code_of("something else"), "EIO");
        let e = Error {
            code: "ENOENT".into(),
            message: "no such file or directory: '/x'".into(),
        };
        assert_eq!(e.to_string(), "ENOENT: no such file or directory: '/x'");
    }
}
