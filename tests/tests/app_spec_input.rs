//! What a specification file may be and hold: only regular files of at most 1 MiB are read
//! (a FIFO, a device or a huge file is one error line for that archive, and the others go on),
//! and keys of `[Content]`/`[Archive]` that are no option are the user's own variables, as in
//! the original.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

/// The size limit of a specification file (README).
const MAX_SPEC_SIZE: usize = 1 << 20;

/// A sandbox with the spec `good` and three bad ones: `fifo` (a FIFO), `zero` (a symbolic
/// link to `/dev/zero`) and `large` (valid text, but larger than the limit).
fn sandbox_with_bad_specs() -> Sandbox {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "good", "archiver = tar");
    TreeBuilder::new(sb.specs_dir()).fifo("fifo.aa", 0o600);
    std::os::unix::fs::symlink("/dev/zero", sb.specs_dir().join("zero.aa")).unwrap();
    let mut large = spec_text(&sb, "archiver = tar");
    while large.len() <= MAX_SPEC_SIZE {
        large.push_str("# a comment to make the file larger than the limit\n");
    }
    sb.write_spec_text("large", &large);
    sb
}

/// The one error line expected for each bad spec.
fn bad_spec_errors(sb: &Sandbox) -> [String; 3] {
    let path = |name: &str| {
        sb.specs_dir()
            .join(format!("{name}.aa"))
            .display()
            .to_string()
    };
    [
        format!("{}: not a regular file (a FIFO)", path("fifo")),
        format!(
            "{}: the file is larger than {MAX_SPEC_SIZE} bytes, the limit for such a file",
            path("large")
        ),
        format!("{}: not a regular file (a character device)", path("zero")),
    ]
}

#[track_caller]
fn assert_one_line_each(out: &AaOutput, errors: &[String]) {
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    let lines = out.error_lines();
    assert_eq!(
        lines.len(),
        errors.len(),
        "one error line per bad spec:\n{out}"
    );
    for (line, error) in lines.iter().zip(errors) {
        assert!(line.ends_with(error.as_str()), "expected {error:?}:\n{out}");
    }
}

#[test]
fn a_bad_spec_file_fails_alone_when_named() {
    let sb = sandbox_with_bad_specs();
    for (name, error) in ["fifo", "large", "zero"].iter().zip(bad_spec_errors(&sb)) {
        let out = sb.aa().arg(name).run();
        assert_one_line_each(&out, &[error]);
    }
    assert!(dest_files(&sb).is_empty());
}

#[test]
fn all_backs_up_the_others() {
    let sb = sandbox_with_bad_specs();
    let out = sb.aa().arg("--all").run();
    assert_one_line_each(&out, &bad_spec_errors(&sb));
    assert_eq!(dest_files(&sb), ["good.tar"], "{out}");
    let members = gnu_list(&sb.dest_dir().join("good.tar"));
    assert!(members.contains(b"a.txt".as_slice()), "{members:?}");
}

#[test]
fn list_shows_the_others() {
    let sb = sandbox_with_bad_specs();
    write_spec(&sb, "good2", "archiver = tar");
    let out = sb.aa().arg("--list").run();
    assert_one_line_each(&out, &bad_spec_errors(&sb));
    let listed: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        listed.contains(&"good") && listed.contains(&"good2"),
        "{out}"
    );
}

/// The example of the original's users: a helper variable in `[Content]`.
fn spec_with_variables(sb: &Sandbox, extra: &str) {
    let srv = sb.mkdir("srv");
    fs::create_dir_all(srv.join("data")).unwrap();
    fs::write(srv.join("data/file.txt"), "data\n").unwrap();
    sb.write_spec_text(
        "srv",
        &format!(
            "[Content]\nbase = {}\npath = %(base)s/data\ninclude-files = file.txt\nexclude-files =\n{extra}\
             [Archive]\narchiver = tar\ndest-dir = {}\n",
            srv.display(),
            sb.dest_dir().display()
        ),
    );
}

#[test]
fn users_variables_interpolate() {
    let sb = Sandbox::new();
    small_source(&sb);
    spec_with_variables(&sb, "");
    let out = sb.aa().arg("srv").run();
    out.assert_success();
    assert!(out.all_output().is_empty(), "{out}");
    assert_eq!(
        gnu_list(&sb.dest_dir().join("srv.tar")),
        [b"file.txt".to_vec()].into()
    );
}

#[test]
fn a_near_miss_is_a_note_with_verbose_only() {
    let sb = Sandbox::new();
    small_source(&sb);
    spec_with_variables(&sb, "include-file = other.txt\n");
    let note = format!(
        "Note: {}:6: \"include-file\" is not an option of [Content] and is only a variable \
         (did you mean \"include-files\"?)",
        sb.specs_dir().join("srv.aa").display()
    );

    let out = sb.aa().arg("srv").run();
    out.assert_success();
    assert!(out.all_output().is_empty(), "no note without -v:\n{out}");
    assert_eq!(
        gnu_list(&sb.dest_dir().join("srv.tar")),
        [b"file.txt".to_vec()].into()
    );

    let out = sb.aa().args(["-v", "srv"]).run();
    out.assert_success();
    assert_eq!(
        out.stdout.lines().filter(|l| *l == note).count(),
        1,
        "{out}"
    );
    assert!(out.stderr.is_empty(), "{out}");
}
