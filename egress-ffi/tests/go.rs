//! `go test ./...` in `examples/go`: the Go wrapper and its tests, through cgo, linked
//! against the `libegress.a` that cargo built for this profile. Skipped without `go`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Prints to the terminal even when the test harness captures output (it captures only the
/// print macros): a skipped check must say so.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Where cargo put `libegress.a` for this test. The test runs as
/// `target/<profile>/deps/go-<hash>`; `cargo test` builds the library's staticlib beside it
/// in `deps/` and only `cargo build` copies it up to `target/<profile>/`, where an older copy
/// may linger. So `deps/` first, then `target/<profile>/`.
fn lib_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    [deps, deps.parent()?]
        .into_iter()
        .find(|dir| dir.join("libegress.a").is_file())
        .map(Path::to_path_buf)
}

#[test]
fn go_wrapper_tests_pass() {
    match Command::new("go").arg("version").output() {
        Ok(output) if output.status.success() => {}
        _ => {
            say!("skipped: go not found");
            return;
        }
    }
    let lib_dir = lib_dir().expect("no libegress.a in target/<profile>/deps or target/<profile>");
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/go");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));

    let start = Instant::now();
    let output = Command::new("go")
        // -count=1: go cannot see libegress.a change, so never reuse a cached result.
        .args(["test", "-count=1", "-timeout", "240s", "./..."])
        .current_dir(&module)
        .env("CGO_ENABLED", "1")
        .env("CGO_LDFLAGS", format!("-L{}", lib_dir.display()))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", tmp.join("go-cache"))
        .env("GOPATH", tmp.join("go-path"))
        .output()
        .expect("cannot run go");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "go test failed ({}) in {}:\n{stdout}\n{stderr}",
        output.status,
        module.display()
    );
    println!(
        "go test passed in {:.1?} against {}/libegress.a:\n{stdout}{stderr}",
        start.elapsed(),
        lib_dir.display()
    );
}
