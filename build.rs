//! Embeds the git revision the binary is built from (`MICROCAL_GIT_REV`, e.g. `53d40c6` or
//! `53d40c6-dirty`), so that every results row says which code produced it wherever the
//! experiment file lives, and `--version` shows it. "Dirty" means uncommitted changes in
//! what is compiled (src, crates, build.rs, Cargo.toml, Cargo.lock, assets), not in results/ or
//! experiments/, which change every time experiments run. Outside a git checkout the
//! revision is `unknown`.

use std::path::Path;
use std::process::Command;

const CODE: &[&str] = &[
    "src",
    "crates",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
    "assets",
];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for path in CODE {
        println!("cargo:rerun-if-changed={path}");
    }
    // A commit or checkout moves HEAD or the branch it points to.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "packed-refs"] {
            let path = Path::new(&git_dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = Path::new(&git_dir).join(branch);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let rev = match git(&["rev-parse", "--short=7", "HEAD"]) {
        Some(rev) => {
            let mut args = vec!["status", "--porcelain", "--"];
            args.extend(CODE);
            let dirty = git(&args).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=MICROCAL_GIT_REV={rev}");
}
