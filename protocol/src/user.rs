//! `-u USER[:GROUP]` resolved the way Docker does, against the passwd and
//! group files of a root filesystem (the image's or, for `exec`, the
//! running container's), never the host's unless that is the image: the
//! uid, the gid, the home dir and the supplementary groups (`--group-add`
//! too).

use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// The groups whose member list (the 4th field of /etc/group) names
    /// the user, in file order. Empty when a group was given explicitly
    /// (`USER:GROUP`), as in Docker: the explicit form sets the one group.
    pub additional_gids: Vec<u32>,
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
    // The name the group file's member lists use; none for a uid that has
    // no passwd entry.
    let mut name = None;
    let mut u = match (find(read, "etc/passwd", user), user.parse::<u32>()) {
        (Some(f), _) => {
            name = Some(f[0].clone());
            User {
                uid: f[2].parse().map_err(|_| Error::NoUser)?,
                gid: f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                home: f.get(5).cloned().unwrap_or_else(|| "/".into()),
                additional_gids: Vec::new(),
            }
        }
        (None, Ok(uid)) => User {
            uid,
            gid: 0,
            home: "/".into(),
            additional_gids: Vec::new(),
        },
        (None, Err(_)) => return Err(Error::NoUser),
    };
    match (group, name) {
        (Some(g), _) => {
            u.gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => find(read, "etc/group", g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or(Error::NoGroup)?,
            };
        }
        (None, Some(name)) => u.additional_gids = member_of(read, &name),
        (None, None) => {}
    }
    Ok(u)
}

/// The gids of the groups whose member list names `user`.
fn member_of(read: ReadFile, user: &str) -> Vec<u32> {
    let Some(data) = read("etc/group") else {
        return Vec::new();
    };
    let mut gids = Vec::new();
    for l in data.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || !f[3].split(',').any(|m| m.trim() == user) {
            continue;
        }
        if let Ok(gid) = f[2].parse::<u32>() {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
    }
    gids
}

/// Resolves `--group-add` values: a group name in the root filesystem's
/// /etc/group, or a number used as it is (listed there or not), as Docker
/// does. Fails with the first name that is not there.
pub fn resolve_groups<'a>(
    read: ReadFile,
    groups: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<u32>, (String, Error)> {
    let mut gids = Vec::new();
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find(read, "etc/group", g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| (g.to_string(), Error::NoGroup))?,
        };
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
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
        fs::write(
            d.join("etc/group"),
            "root:x:0:\nstaff:x:50:\naudio:x:29:alice,bob\nvideo:x:44:bob\nbobby:x:45:bobby\n",
        )
        .unwrap();
        let r = |s| resolve(&d, s).map(|u| (u.uid, u.gid, u.home, u.additional_gids));
        assert_eq!(r("bob"), Ok((1000, 100, "/home/bob".into(), vec![29, 44])));
        assert_eq!(r("1000"), Ok((1000, 100, "/home/bob".into(), vec![29, 44])));
        // The explicit form sets the group and nothing else (Docker).
        assert_eq!(r("bob:staff"), Ok((1000, 50, "/home/bob".into(), vec![])));
        assert_eq!(r("42:7"), Ok((42, 7, "/".into(), vec![])));
        assert_eq!(r("42"), Ok((42, 0, "/".into(), vec![])));
        assert_eq!(r("nobody"), Err(Error::NoUser));
        assert_eq!(r("bob:nogroup"), Err(Error::NoGroup));
        let read = |f: &str| fs::read_to_string(d.join(f)).ok();
        assert_eq!(
            resolve_groups(&read, ["staff", "4242", "audio", "50"]),
            Ok(vec![50, 4242, 29])
        );
        assert_eq!(
            resolve_groups(&read, ["staff", "wheel"]),
            Err(("wheel".to_string(), Error::NoGroup))
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
