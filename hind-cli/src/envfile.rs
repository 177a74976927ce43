//! `run --env-file FILE`, in Docker's format: one `KEY=VALUE` per line,
//! taken as written after leading whitespace (no quotes are removed);
//! blank lines and lines starting with `#` are skipped; a bare `KEY`
//! copies the caller's value, or is dropped when it has none.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read env file {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("env file {0} line {1}: no variable name")]
    NoName(PathBuf, usize),
    #[error("env file {0} line {1}: variable {2:?} contains whitespace")]
    Whitespace(PathBuf, usize, String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `K=V` entries of `path`, in order.
pub fn read(path: &Path) -> Result<Vec<String>> {
    let data = fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
    parse(path, &String::from_utf8_lossy(&data))
}

fn parse(path: &Path, text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(Error::NoName(path.to_path_buf(), i + 1));
        }
        if key.contains(char::is_whitespace) {
            return Err(Error::Whitespace(path.to_path_buf(), i + 1, key.into()));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Ok(v) = std::env::var(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// Every `--env-file`, in order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(read(p)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_format() {
        std::env::set_var("HIND_TEST_ENVFILE_COPY", "c");
        let p = Path::new("f");
        let text = "# comment\n\n  A=1\nB= spaced \"q\" \nHIND_TEST_ENVFILE_COPY\nHIND_TEST_ENVFILE_UNSET\nC=\n";
        assert_eq!(
            parse(p, text).unwrap(),
            vec!["A=1", "B= spaced \"q\" ", "HIND_TEST_ENVFILE_COPY=c", "C="]
        );
        assert!(matches!(parse(p, "=x\n"), Err(Error::NoName(_, 1))));
        assert!(matches!(
            parse(p, "A=1\nB C=2\n"),
            Err(Error::Whitespace(_, 2, _))
        ));
    }
}
