//! The C API from C: builds the test program in `tests/c/` with gcc against `libegress.a`
//! (under AddressSanitizer and UBSan when gcc has them) and runs it over loopback; checks
//! that `include/egress.h` compiles alone as C99, C11 and C++; builds the C example in
//! `examples/c/` and runs its self-check. Without gcc, each test says it skipped.

// clippy allows these in #[test] functions only; here the helpers are test code too, and a
// failure in them is the test's failure.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test support code: failing loudly is its job"
)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Prints to the terminal even when the test harness captures output (it captures only the
/// print macros): a skipped check must say so.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Warnings are errors, and the code must be standard C (POSIX and GNU APIs aside).
const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];
/// What a program linking `libegress.a` (Rust's std and tokio) needs besides it.
const LIBS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt"];
const SANITIZE: &[&str] = &["-fsanitize=address,undefined", "-fno-omit-frame-pointer"];
/// Far above the C test's own run time (seconds), below "hung".
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `target/<profile>/deps`, where this test runs as `c_api-<hash>`.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    assert_eq!(
        deps.file_name(),
        Some(OsStr::new("deps")),
        "expected the test binary in target/<profile>/deps: {}",
        exe.display()
    );
    deps.to_path_buf()
}

/// The staticlib cargo built from the same compilation as the rlib this test links: it
/// lands in `target/<profile>/deps`. `cargo build` also copies it up to
/// `target/<profile>`, but `cargo test` alone does not, so that copy may be missing or
/// stale; it is only the fallback.
fn static_lib() -> PathBuf {
    let deps = deps_dir();
    let candidates = [
        deps.join("libegress.a"),
        deps.parent().expect("target/<profile>").join("libegress.a"),
    ];
    candidates
        .iter()
        .find(|lib| lib.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "libegress.a is in neither {} nor {}: the crate's staticlib was not built",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// A fresh directory for one test's outputs under cargo's scratch space.
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_api")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the work directory");
    dir
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `command` to the end and fails the test, showing its output, unless it succeeded.
fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(command)));
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `command` with a deadline: killed past it. Output goes to files, so a chatty
/// program cannot block on a full pipe while we wait.
fn run_with_timeout(command: &mut Command, dir: &Path, timeout: Duration) -> Output {
    let stdout_path = dir.join("stdout.txt");
    let stderr_path = dir.join("stderr.txt");
    let mut child = command
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(command)));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the C test") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break child.wait().expect("wait for the killed C test");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| {
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(path) {
            let _ = file.read_to_end(&mut bytes);
        }
        bytes
    };
    if start.elapsed() > timeout {
        eprintln!("{} timed out after {timeout:?}", describe(command));
    }
    Output {
        status,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    }
}

/// Whether gcc can build and run a program with AddressSanitizer and UBSan here (the
/// runtime libraries may be missing, or ASan may not run under this kernel or tracer).
fn sanitizers_work(dir: &Path) -> bool {
    let source = dir.join("trial.c");
    let binary = dir.join("trial");
    std::fs::write(&source, "int main(void) { return 0; }\n").expect("write trial.c");
    let built = Command::new("gcc")
        .args(SANITIZE)
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .output()
        .is_ok_and(|output| output.status.success());
    built
        && Command::new(&binary)
            .output()
            .is_ok_and(|output| output.status.success())
}

fn c_sources(dir: &Path) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read tests/c")
        .map(|entry| entry.expect("a tests/c entry").path())
        .filter(|path| path.extension() == Some(OsStr::new("c")))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no C sources in {}", dir.display());
    sources
}

/// `gcc` with the test flags, the header's directory, `sources`, the library and its needs.
fn gcc_build(sources: &[PathBuf], output: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new("gcc");
    command
        .args(C_FLAGS)
        .args(extra)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .args(sources)
        .arg(static_lib())
        .args(LIBS)
        .arg("-o")
        .arg(output);
    command
}

#[test]
fn c_test_program_passes() {
    if !have("gcc") {
        say!("skipped: the C API test needs a C compiler, and gcc not found");
        return;
    }
    let dir = work_dir("test_egress");
    let sanitize = sanitizers_work(&dir);
    if !sanitize {
        eprintln!(
            "note: gcc cannot build and run -fsanitize=address,undefined here; building the C test without sanitizers"
        );
    }
    let c_dir = crate_dir().join("tests/c");
    let binary = dir.join("test_egress");
    run_ok(&mut gcc_build(
        &c_sources(&c_dir),
        &binary,
        if sanitize { SANITIZE } else { &[] },
    ));

    let mut command = Command::new(&binary);
    command
        .arg(c_dir.join("data"))
        .env("EGRESS_EXPECTED_VERSION", env!("CARGO_PKG_VERSION"))
        // Leaks are errors. No suppression is needed: egress's process-lifetime allocations
        // (the pipe budget, std's per-thread handles) stay reachable, which LSan accepts.
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    let output = run_with_timeout(&mut command, &dir, RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the C test failed ({}){}:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status,
        if sanitize {
            ", under ASan and UBSan"
        } else {
            ""
        }
    );
    assert!(
        stdout.contains("checks passed"),
        "no summary from the C test:\n{stdout}\n{stderr}"
    );
    eprintln!(
        "{}{}",
        stdout.trim_end(),
        if sanitize {
            " (AddressSanitizer, LeakSanitizer, UBSan)"
        } else {
            " (no sanitizers)"
        }
    );
}

#[test]
fn header_compiles_alone_as_c_and_cpp() {
    if !have("gcc") {
        say!("skipped: compiling egress.h needs gcc, and gcc not found");
        return;
    }
    let header = crate_dir().join("include/egress.h");
    for std in ["-std=c99", "-std=c11", "-std=c17"] {
        run_ok(
            Command::new("gcc")
                .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic"])
                .args(["-fsyntax-only", "-x", "c"])
                .arg(&header),
        );
    }
    if have("g++") {
        for std in ["-std=c++11", "-std=c++17"] {
            run_ok(
                Command::new("g++")
                    .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic"])
                    .args(["-fsyntax-only", "-x", "c++"])
                    .arg(&header),
            );
        }
    } else {
        say!("skipped the C++ check: g++ not found");
    }
}

#[test]
fn c_example_builds_and_checks_itself() {
    if !have("gcc") {
        say!("skipped: building the C example needs gcc, and gcc not found");
        return;
    }
    let dir = work_dir("sni_router");
    let sanitize = sanitizers_work(&dir);
    let source = crate_dir().join("../examples/c/sni_router.c");
    let binary = dir.join("sni_router");
    run_ok(&mut gcc_build(
        &[source],
        &binary,
        if sanitize { SANITIZE } else { &[] },
    ));
    let output = run_ok(
        Command::new(&binary)
            .arg("--self-check")
            .env("ASAN_OPTIONS", "detect_leaks=1"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("self-check ok"),
        "unexpected self-check output:\n{stdout}"
    );
}
