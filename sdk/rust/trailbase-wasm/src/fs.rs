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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

const CODES: [&str; 7] = ["ENOENT", "EACCES", "EISDIR", "EFBIG", "EINVAL", "ENOSYS", "EIO"];

/// The whole file at `path` (absolute, inside the root directory).
pub async fn read_file(path: impl AsRef<str>) -> Result<Vec<u8>, Error> {
    abi::read_file(path.as_ref()).await.map_err(|message| {
        let code = CODES
            .iter()
            .find(|c| message.contains(*c))
            .unwrap_or(&"EIO")
            .to_string();
        Error { code, message }
    })
}

/// The file at `path` as UTF-8 text (invalid sequences become U+FFFD).
pub async fn read_to_string(path: impl AsRef<str>) -> Result<String, Error> {
    let bytes = read_file(path).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
