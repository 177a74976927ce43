//! Supplementary groups: a user named by `-u` or the image's `User` gets
//! the groups the container's own /etc/group lists it in (never the
//! host's), `--group-add` adds more (a name there or a number), the
//! explicit `USER:GROUP` form and a uid without a passwd entry get none,
//! and `exec -u` resolves the same way.

use hind_tests::detach::{rm_f, run_detached};
use hind_tests::oci::{docker_archive, Entry, ImageBuilder, Layer};
use hind_tests::{Output, TestEnv};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
bob:x:1000:1000::/home/bob:/bin/sh\n\
alice:x:1001:1001::/home/alice:/bin/sh\n";
/// `hindonly` exists in no host's /etc/group; `wheel` lists root.
const GROUP: &str = "root:x:0:\n\
wheel:x:10:root\n\
audio:x:29:alice,bob\n\
staff:x:50:\n\
hindonly:x:777:bob\n\
bob:x:1000:\n\
alice:x:1001:\n";

/// Loads the busybox image with these passwd and group files and
/// `User bob` as `groups:1`.
fn load_image(env: &TestEnv) {
    let img = ImageBuilder::new()
        .layer(Layer::busybox())
        .layer(Layer::new(&[
            Entry::file("etc/passwd", PASSWD),
            Entry::file("etc/group", GROUP),
        ]))
        .user("bob");
    let archive = env.scratch().join("groups.tar");
    docker_archive(&archive, &[(&img, &["groups:1"])]);
    env.run(&["load", "-q", "-i", archive.to_str().unwrap()])
        .expect_success();
}

/// `hind run --rm FLAGS groups:1 id -G`.
fn id_groups(env: &TestEnv, flags: &[&str]) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["groups:1", "id", "-G"]);
    env.run(&args)
}

/// `id -G` prints the gid, then getgroups(2), which the kernel keeps
/// sorted; `want` is written that way.
#[track_caller]
fn expect_groups(env: &TestEnv, flags: &[&str], want: &str) {
    let out = id_groups(env, flags);
    out.expect_success();
    assert_eq!(out.stdout.trim(), want, "flags {flags:?}:\n{out}");
}

#[test]
fn users_get_the_groups_of_the_containers_group_file() {
    let env = TestEnv::new("grpuser");
    load_image(&env);
    // The image's User, then -u by name and by uid: primary group first.
    expect_groups(&env, &[], "1000 29 777");
    expect_groups(&env, &["-u", "alice"], "1001 29");
    expect_groups(&env, &["-u", "1000"], "1000 29 777");
    expect_groups(&env, &["-u", "root"], "0 10");
    // The explicit group form sets that group only (Docker's rule).
    expect_groups(&env, &["-u", "bob:staff"], "50");
    // A uid with no passwd entry has no name to be a member by.
    expect_groups(&env, &["-u", "2000"], "0");
    env.finish();
}

#[test]
fn group_add_by_name_or_number() {
    let env = TestEnv::new("grpadd");
    load_image(&env);
    expect_groups(
        &env,
        &[
            "--group-add",
            "staff",
            "--group-add",
            "4242",
            "--group-add",
            "audio",
        ],
        "1000 29 50 777 4242",
    );
    expect_groups(&env, &["-u", "2000", "--group-add", "staff"], "0 50");
    // Names are looked up in the image, never on the host: `daemon` is a
    // group of every Debian host, not of this image.
    for g in ["nosuchgroup", "daemon"] {
        let out = id_groups(&env, &["--group-add", g]);
        out.expect_hind_error(125, &["--group-add", g, "/etc/group"]);
    }
    assert!(
        env.containers().is_empty(),
        "a refused run left a container"
    );
    env.finish();
}

#[test]
fn exec_user_gets_its_groups_and_the_containers_group_add() {
    let env = TestEnv::new("grpexec");
    load_image(&env);
    let id = run_detached(&env, &["--group-add", "staff", "groups:1", "sleep", "30"]);
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[&id, "id", "-G"]);
        let out = env.run(&all);
        out.expect_success();
        out.stdout.trim().to_string()
    };
    assert_eq!(exec(&[]), "1000 29 50 777", "the container's own user");
    assert_eq!(exec(&["-u", "alice"]), "1001 29 50");
    assert_eq!(exec(&["-u", "root"]), "0 10 50");
    assert_eq!(exec(&["-u", "2000"]), "0 50");
    rm_f(&env, &[&id]);
    env.finish();
}
