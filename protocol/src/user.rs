//! `-u USER[:GROUP]` resolved the way Docker does, against the passwd and
//! group files of a root filesystem (the image's or, for `exec`, the
//! running container's), never the host's unless that is the image.

use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no such user in the container's /etc/passwd")]
    NoUser,
    #[error("no such group in the container's /etc/group")]
    NoGroup,
}

/// Reads a file of the root filesystem by its path relative to `/`.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The first line of `file` whose name (field 0) or id (field 2) is
/// `key`, split into fields.
fn find(read: ReadFile, file: &str, key: &str) -> Option<Vec<String>> {
    let data = read(file)?;
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && (f[0] == key || f[2] == key))
            .then(|| f.into_iter().map(str::to_string).collect())
    })
}

/// Resolves `USER[:GROUP]` (names or numbers) under `root`. A numeric user
/// that has no passwd entry is used as it is, with gid 0 and home `/`.
pub fn resolve(root: &Path, spec: &str) -> Result<User, Error> {
    resolve_with(&|f| fs::read_to_string(root.join(f)).ok(), spec)
}

/// [`resolve`] over a root filesystem that is not one directory (an
/// image's layers): `read` finds the files.
pub fn resolve_with(read: ReadFile, spec: &str) -> Result<User, Error> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut u = match (find(read, "etc/passwd", user), user.parse::<u32>()) {
        (Some(f), _) => User {
            uid: f[2].parse().map_err(|_| Error::NoUser)?,
            gid: f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
            home: f.get(5).cloned().unwrap_or_else(|| "/".into()),
        },
        (None, Ok(uid)) => User {
            uid,
            gid: 0,
            home: "/".into(),
        },
        (None, Err(_)) => return Err(Error::NoUser),
    };
    if let Some(g) = group {
        u.gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find(read, "etc/group", g)
                .and_then(|f| f[2].parse().ok())
                .ok_or(Error::NoGroup)?,
        };
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_groups() {
        let d = std::env::temp_dir().join(format!("hind-user-{}", std::process::id()));
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(
            d.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/home/bob:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let r = |s| resolve(&d, s).map(|u| (u.uid, u.gid, u.home));
        assert_eq!(r("bob"), Ok((1000, 100, "/home/bob".into())));
        assert_eq!(r("1000"), Ok((1000, 100, "/home/bob".into())));
        assert_eq!(r("bob:staff"), Ok((1000, 50, "/home/bob".into())));
        assert_eq!(r("42:7"), Ok((42, 7, "/".into())));
        assert_eq!(r("nobody"), Err(Error::NoUser));
        assert_eq!(r("bob:nogroup"), Err(Error::NoGroup));
        fs::remove_dir_all(&d).unwrap();
    }
}
