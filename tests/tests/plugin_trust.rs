//! Plugin loading as a hostile user would try it (issue 12): plugin directories and files that
//! others can write or own, symbolic links to them, a library that is no plugin (whose code must
//! never run), a damaged plugin that crashes the loader, a duplicate provider, and the verdict
//! cache that keeps the probing to once per file. Every refusal is one warning line naming the
//! file, and never changes the exit code of a run that is otherwise good.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use aa_tests::*;

/// `aa` in the sandbox with its own cache directory, so verdicts of one test are its own.
fn aa(sb: &Sandbox) -> Aa {
    sb.aa().env("XDG_CACHE_HOME", sb.path().join("cache"))
}

fn cache_file(sb: &Sandbox) -> PathBuf {
    sb.path().join("cache/aa/plugin-verdicts")
}

/// (provider id, library) of each provider `--list-providers` printed.
fn listed(out: &AaOutput) -> Vec<(String, PathBuf)> {
    out.stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.trim().is_empty())
        .map(|l| {
            let (id, lib) = l.split_once("  ").expect("`ID  LIBRARY`");
            (id.to_string(), PathBuf::from(lib.trim()))
        })
        .collect()
}

fn library_of(out: &AaOutput, id: &str) -> Option<PathBuf> {
    listed(out)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, l)| l)
}

/// A plugin directory (mode 0755) in the sandbox.
fn plugin_dir(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.mkdir(name);
    chmod(&dir, 0o755);
    dir
}

/// A copy of the example plugin (provider `Hello`) at `path`, mode 0644.
fn hello_at(path: &Path) -> PathBuf {
    fs::copy(build_hello_provider(), path).unwrap();
    chmod(path, 0o644);
    path.to_path_buf()
}

fn warning(what: &str, path: &Path, reason: &str) -> String {
    format!(
        "aa: Warning! {what} \"{}\" ignored: {reason}",
        path.display()
    )
}

/// Runs `--list-providers` with `dir` and checks: exit 0, exactly `warnings` on stderr, the
/// built-in providers listed.
#[track_caller]
fn list_with(sb: &Sandbox, dir: &Path, warnings: &[String]) -> AaOutput {
    let out = aa(sb)
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(dir)
        .run();
    out.assert_success();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines, warnings, "{out}");
    for id in ["TarInternal", "TarExternal"] {
        assert!(library_of(&out, id).is_some(), "{id} listed:\n{out}");
    }
    out
}

#[test]
fn a_plugin_directory_others_can_write_is_refused_and_not_used() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    hello_at(&dir.join("libaa_hello_provider.so"));
    chmod(&dir, 0o777);
    let out = list_with(
        &sb,
        &dir,
        &[warning(
            "plugin directory",
            &dir,
            "writable by others (mode 0777)",
        )],
    );
    assert_eq!(library_of(&out, "Hello"), None, "{out}");

    // Not used for a backup either: the provider is unknown, no backup is made.
    simple_fixture(&sb.src_dir());
    sb.write_spec(
        "data",
        &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@Hello"),
    );
    let out = aa(&sb).arg("--plugin-dir").arg(&dir).arg("data").run();
    out.assert_clean_failure();
    assert!(dir_names(&sb.dest_dir()).is_empty(), "{out}");

    // Group-writable is refused the same way; 0755 makes the same directory good.
    chmod(&dir, 0o775);
    list_with(
        &sb,
        &dir,
        &[warning(
            "plugin directory",
            &dir,
            "writable by group (mode 0775)",
        )],
    );
    chmod(&dir, 0o755);
    let out = list_with(&sb, &dir, &[]);
    assert_eq!(
        library_of(&out, "Hello"),
        Some(dir.join("libaa_hello_provider.so"))
    );
    aa(&sb)
        .arg("--plugin-dir")
        .arg(&dir)
        .arg("data")
        .run()
        .assert_success();
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar"]);
}

/// Below a world-writable directory, a directory of good mode is refused too, naming the
/// ancestor at fault; a refused directory refuses nothing else.
#[test]
fn an_ancestor_others_can_write_refuses_the_directory_below_only() {
    let sb = Sandbox::new();
    let open = plugin_dir(&sb, "open");
    let below = plugin_dir(&sb, "open/plugins");
    hello_at(&below.join("libaa_hello_provider.so"));
    chmod(&open, 0o777);
    let good = plugin_dir(&sb, "good");
    let out = aa(&sb)
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&below)
        .arg("--plugin-dir")
        .arg(&good)
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [warning(
            "plugin directory",
            &below,
            &format!(
                "its ancestor \"{}\" is writable by others (mode 0777)",
                open.display()
            )
        )],
        "{out}"
    );
    assert!(library_of(&out, "TarInternal").is_some(), "{out}");
    assert_eq!(library_of(&out, "Hello"), None, "{out}");
}

#[test]
fn plugin_files_others_can_write_are_refused_one_by_one() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let open = hello_at(&dir.join("libopen.so"));
    chmod(&open, 0o666);
    let group = hello_at(&dir.join("libgroup.so"));
    chmod(&group, 0o664);
    let good = hello_at(&dir.join("libzgood.so"));
    let out = list_with(
        &sb,
        &dir,
        &[
            warning("plugin", &group, "writable by group (mode 0664)"),
            warning("plugin", &open, "writable by others (mode 0666)"),
        ],
    );
    // The refused files refuse nothing else: the good copy is the provider.
    assert_eq!(library_of(&out, "Hello"), Some(good), "{out}");
}

#[test]
fn a_plugin_owned_by_another_user_is_refused() {
    let sb = Sandbox::new();
    if !is_root() {
        eprintln!("skipped: only root can give a file to another user (uid 65534)");
        return;
    }
    let dir = plugin_dir(&sb, "plugins");
    let theirs = hello_at(&dir.join("libtheirs.so"));
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let out = list_with(
        &sb,
        &dir,
        &[warning("plugin", &theirs, "owned by uid 65534, not root")],
    );
    assert_eq!(library_of(&out, "Hello"), None, "{out}");

    // A directory of theirs, with a file of ours in it, is refused as a whole.
    std::os::unix::fs::chown(&theirs, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let out = list_with(
        &sb,
        &dir,
        &[warning(
            "plugin directory",
            &dir,
            "owned by uid 65534, not root",
        )],
    );
    assert_eq!(library_of(&out, "Hello"), None, "{out}");
}

#[test]
fn symbolic_links_are_judged_by_their_target_and_its_directory() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let elsewhere = plugin_dir(&sb, "elsewhere");
    let open_dir = plugin_dir(&sb, "open");

    let open_file = hello_at(&elsewhere.join("libopen.so"));
    chmod(&open_file, 0o666);
    symlink(&open_file, dir.join("liba.so")).unwrap();
    hello_at(&open_dir.join("libin-open-dir.so"));
    chmod(&open_dir, 0o777);
    symlink(open_dir.join("libin-open-dir.so"), dir.join("libb.so")).unwrap();
    let good = hello_at(&elsewhere.join("libgood.so"));
    symlink(&good, dir.join("libc.so")).unwrap();

    let real = |p: &Path| fs::canonicalize(p).unwrap();
    let out = list_with(
        &sb,
        &dir,
        &[
            warning(
                "plugin",
                &dir.join("liba.so"),
                &format!(
                    "its target \"{}\" is writable by others (mode 0666)",
                    real(&open_file).display()
                ),
            ),
            warning(
                "plugin",
                &dir.join("libb.so"),
                &format!(
                    "it links into \"{}\", which is refused: writable by others (mode 0777)",
                    real(&open_dir).display()
                ),
            ),
        ],
    );
    // The good link loads (listed by its real path).
    assert_eq!(library_of(&out, "Hello"), Some(real(&good)), "{out}");

    // A plugin directory that is a link to a directory others can write.
    let link_dir = sb.path().join("link-to-open");
    symlink(&open_dir, &link_dir).unwrap();
    list_with(
        &sb,
        &link_dir,
        &[warning(
            "plugin directory",
            &link_dir,
            "writable by others (mode 0777)",
        )],
    );
}

/// The system zlib, copied.
fn copy_of_libz(to: &Path) -> PathBuf {
    let ldconfig = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .expect("run ldconfig -p");
    let text = String::from_utf8_lossy(&ldconfig.stdout);
    let libz = text
        .lines()
        .find(|l| l.trim_start().starts_with("libz.so.1 "))
        .and_then(|l| l.split("=> ").nth(1))
        .expect("libz.so.1 in ldconfig -p");
    fs::copy(libz.trim(), to).unwrap();
    chmod(to, 0o644);
    to.to_path_buf()
}

/// What `LD_DEBUG=files` wrote for each process of a run: (file, text).
fn loader_logs(prefix: &Path) -> Vec<(PathBuf, String)> {
    let name = prefix.file_name().unwrap().to_str().unwrap().to_string();
    let mut logs: Vec<(PathBuf, String)> = fs::read_dir(prefix.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}.")))
        })
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    logs.sort();
    logs
}

fn inits(text: &str, library: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("calling init: ") && l.ends_with(library))
        .count()
}

#[test]
fn a_library_that_is_no_plugin_never_runs() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let libz = copy_of_libz(&dir.join("libz.so"));
    let logs = sb.mkdir("ld");
    let prefix = logs.join("run");
    let out = aa(&sb)
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&dir)
        .env("LD_DEBUG", "files")
        .env("LD_DEBUG_OUTPUT", &prefix)
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [warning(
            "plugin",
            &libz,
            &format!(
                "not an aa plugin (its dynamic symbol table does not define {})",
                aa_abi::host::ROOT_MODULE_SYMBOL
            )
        )],
        "{out}"
    );
    let logs = loader_logs(&prefix);
    // The log is there and records initialisers: the built-in plugins' ran.
    assert!(
        logs.iter()
            .any(|(_, text)| inits(text, "libaa_plugin_tar_internal.so") > 0),
        "LD_DEBUG logs without the built-in plugin's init: {logs:?}"
    );
    for (file, text) in &logs {
        assert_eq!(
            inits(text, &libz.display().to_string()),
            0,
            "{} shows the copy of zlib initialised",
            file.display()
        );
    }
}

/// A copy of the TarInternal plugin with its dynamic section and what follows zeroed (4 KiB,
/// same size): the dynamic loader crashes on it with SIGSEGV.
fn zero_filled_copy(to: &Path) -> PathBuf {
    let mut bytes = fs::read(builtin_plugin("aa_plugin_tar_internal")).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(&bytes, 32), u16_at(&bytes, 54), u16_at(&bytes, 56));
    const PT_DYNAMIC: u32 = 2;
    let dynamic = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32::from_le_bytes(bytes[ph..ph + 4].try_into().unwrap()) == PT_DYNAMIC)
        .map(|ph| u64_at(&bytes, ph + 8))
        .expect("the plugin has a dynamic section");
    let end = (dynamic + 4096).min(bytes.len());
    bytes[dynamic..end].fill(0);
    fs::write(to, &bytes).unwrap();
    chmod(to, 0o644);
    to.to_path_buf()
}

#[test]
fn a_plugin_that_crashes_the_loader_is_skipped_and_backups_go_on() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let broken = zero_filled_copy(&dir.join("libbroken.so"));
    let crashed = warning("plugin", &broken, "crashes while loading (signal 11)");
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    let out = aa(&sb)
        .arg("--plugin-dir")
        .arg(&dir)
        .args(["-a", "targz_internal", "data"])
        .run();
    out.assert_success();
    // (The first run also notes that it creates the storage directory.)
    let about_plugins: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("plugin"))
        .collect();
    assert_eq!(about_plugins, [crashed.as_str()], "{out}");
    let restored = sb.mkdir("restored");
    gnu_extract(&sb.dest_dir().join("data.tar.gz"), &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "next to a plugin that crashes the loader",
    );

    // Listing works too, the second time from the remembered verdict.
    let out = list_with(&sb, &dir, std::slice::from_ref(&crashed));
    assert_eq!(
        library_of(&out, "TarInternal").map(|l| fs::canonicalize(l).unwrap()),
        Some(fs::canonicalize(builtin_plugin("aa_plugin_tar_internal")).unwrap())
    );
}

#[test]
fn a_duplicate_provider_is_never_loaded_into_aa() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let dup = dir.join("libdup.so");
    fs::copy(builtin_plugin("aa_plugin_tar_internal"), &dup).unwrap();
    chmod(&dup, 0o644);
    let builtin = builtin_plugin("aa_plugin_tar_internal");
    let message = warning(
        "plugin",
        &dup,
        &format!(
            "duplicate provider \"TarInternal\" (already loaded from {})",
            builtin.display()
        ),
    );
    let dup_name = dup.display().to_string();
    let logs = sb.mkdir("ld");

    // First run: every library is probed in a child of its own, then the good ones are loaded
    // into aa, whose log is the one showing both built-in plugins initialised.
    let first = logs.join("first");
    let out = aa(&sb)
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&dir)
        .env("LD_DEBUG", "files")
        .env("LD_DEBUG_OUTPUT", &first)
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [message.as_str()],
        "{out}"
    );
    let logs_first = loader_logs(&first);
    let parent: Vec<&(PathBuf, String)> = logs_first
        .iter()
        .filter(|(_, t)| {
            inits(t, "libaa_plugin_tar_internal.so") > 0
                && inits(t, "libaa_plugin_tar_external.so") > 0
        })
        .collect();
    assert_eq!(parent.len(), 1, "one process loads both: {logs_first:?}");
    assert_eq!(
        inits(&parent[0].1, &dup_name),
        0,
        "aa ran the duplicate's init"
    );
    // The duplicate was probed (in a child), so its id is known.
    assert!(
        logs_first.iter().any(|(_, t)| inits(t, &dup_name) == 1),
        "the duplicate was probed: {logs_first:?}"
    );

    // Second run: known verdicts, no child at all, and the duplicate is not loaded.
    let second = logs.join("second");
    let out = aa(&sb)
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&dir)
        .env("LD_DEBUG", "files")
        .env("LD_DEBUG_OUTPUT", &second)
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [message.as_str()],
        "{out}"
    );
    let logs_second = loader_logs(&second);
    assert_eq!(logs_second.len(), 1, "no probe process: {logs_second:?}");
    assert_eq!(inits(&logs_second[0].1, &dup_name), 0);
    assert!(inits(&logs_second[0].1, "libaa_plugin_tar_internal.so") > 0);
}

fn probing(file: &Path) -> String {
    format!("plugin {}: probing it in a child process", file.display())
}

#[test]
fn verdicts_are_remembered_and_forgotten_when_the_file_changes() {
    let sb = Sandbox::new();
    let dir = plugin_dir(&sb, "plugins");
    let lib = zero_filled_copy(&dir.join("libx.so"));
    let crashed = warning("plugin", &lib, "crashes while loading (signal 11)");
    let debug = |sb: &Sandbox| {
        let out = aa(sb)
            .arg("--list-providers")
            .arg("--plugin-dir")
            .arg(&dir)
            .env("AA_LOG", "debug")
            .run();
        out.assert_success();
        out
    };
    let warnings = |out: &AaOutput| -> Vec<String> {
        out.stderr
            .lines()
            .filter(|l| l.starts_with("aa: "))
            .map(String::from)
            .collect()
    };

    let out = debug(&sb);
    assert!(out.stderr.contains(&probing(&lib)), "{out}");
    assert_eq!(warnings(&out), [crashed.as_str()], "{out}");
    let cache = fs::metadata(cache_file(&sb)).expect("the verdicts are stored");
    assert_eq!(cache.mode() & 0o777, 0o600);
    assert_eq!(cache.uid(), fs::metadata(sb.path()).unwrap().uid());

    // Known now: no probe, the same line.
    let out = debug(&sb);
    assert!(!out.stderr.contains("probing it"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "plugin {}: known verdict: refused: crashes while loading (signal 11)",
            lib.display()
        )),
        "{out}"
    );
    assert_eq!(warnings(&out), [crashed.as_str()], "{out}");

    // The same file with another modification time is judged again.
    set_mtime(&lib, (1_000_000_000, 0));
    let out = debug(&sb);
    assert!(out.stderr.contains(&probing(&lib)), "{out}");
    assert_eq!(warnings(&out), [crashed.as_str()], "{out}");

    // Replaced in place (the same inode) by a good plugin: probed and loaded.
    fs::copy(build_hello_provider(), &lib).unwrap();
    let out = debug(&sb);
    assert!(out.stderr.contains(&probing(&lib)), "{out}");
    assert!(warnings(&out).is_empty(), "{out}");
    assert_eq!(library_of(&out, "Hello"), Some(lib.clone()), "{out}");

    // A cache file others can write is not believed: probing again, and still no warning.
    chmod(&cache_file(&sb), 0o666);
    let out = debug(&sb);
    assert!(out.stderr.contains(&probing(&lib)), "{out}");
    assert!(out.stderr.contains("not used: writable by others"), "{out}");
    assert!(warnings(&out).is_empty(), "{out}");
    // ... and is replaced by a good one.
    assert_eq!(fs::metadata(cache_file(&sb)).unwrap().mode() & 0o777, 0o600);
}
