//! Finds the kvserve library to link, in this order:
//! 1. `KVSERVE_DIR`: an install prefix (`cmake --install <build> --prefix <dir>`),
//!    read through its `lib*/pkgconfig/kvserve.pc`;
//! 2. `pkg-config kvserve` (a system or `PKG_CONFIG_PATH` install);
//! 3. otherwise builds the repository this crate sits in with CMake, CPU only
//!    (`-DKVSERVE_ENABLE_CUDA=OFF`), and installs it under `OUT_DIR`.
//!
//! The .pc file's `Libs` become link directives and its include directory
//! becomes `KVSERVE_INCLUDE_DIR` (the layout test compiles the header from there).
use std::collections::HashMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KVSERVE_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let pc = if let Some(dir) = env::var_os("KVSERVE_DIR") {
        find_pc(Path::new(&dir)).unwrap_or_else(|| {
            fail(&format!("KVSERVE_DIR={}: no lib*/pkgconfig/kvserve.pc below it", Path::new(&dir).display()))
        })
    } else if let Some(pc) = pkg_config_file() {
        pc
    } else {
        build_from_repo()
    };
    println!("cargo:rerun-if-changed={}", pc.display());
    let text = std::fs::read_to_string(&pc).unwrap_or_else(|e| fail(&format!("{}: {e}", pc.display())));
    let fields = parse_pc(&text, pc.parent().unwrap());
    let libs = fields.get("Libs").unwrap_or_else(|| fail(&format!("{}: no Libs line", pc.display())));
    for flag in libs.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            // kvserve itself is a static archive; the rest are system libraries.
            let kind = if lib == "kvserve" || lib == "cudart_static" { "static" } else { "dylib" };
            println!("cargo:rustc-link-lib={kind}={lib}");
        }
    }
    let include = fields
        .get("Cflags")
        .and_then(|c| c.split_whitespace().find_map(|f| f.strip_prefix("-I")).map(PathBuf::from))
        .unwrap_or_else(|| fail(&format!("{}: no -I in Cflags", pc.display())));
    if !include.join("kvserve/kvserve.h").is_file() {
        fail(&format!("{}: kvserve/kvserve.h not under {}", pc.display(), include.display()));
    }
    println!("cargo:rustc-env=KVSERVE_INCLUDE_DIR={}", include.display());
    println!("cargo:include={}", include.display());
    println!("cargo:cuda={}", fields.get("cuda").map(String::as_str).unwrap_or("OFF"));
}

fn fail(why: &str) -> ! {
    eprintln!("kvserve-sys: {why}");
    std::process::exit(1);
}

/// `<prefix>/lib*/pkgconfig/kvserve.pc` (lib, lib64, lib/<multiarch>).
fn find_pc(prefix: &Path) -> Option<PathBuf> {
    let mut dirs = vec![];
    for entry in std::fs::read_dir(prefix).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with("lib") {
            dirs.push(path.clone());
            dirs.extend(std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()));
        }
    }
    dirs.into_iter().map(|d| d.join("pkgconfig/kvserve.pc")).find(|p| p.is_file())
}

fn pkg_config_file() -> Option<PathBuf> {
    let out = Command::new("pkg-config").args(["--variable=pcfiledir", "kvserve"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(Path::new(dir.trim()).join("kvserve.pc"))
}

/// The .pc file's variables (`name=value`) and fields (`Name: value`), with
/// `${var}` expanded; `pcfiledir` is the file's directory, as pkg-config defines it.
fn parse_pc(text: &str, dir: &Path) -> HashMap<String, String> {
    let mut vars = HashMap::from([("pcfiledir".to_string(), dir.display().to_string())]);
    let mut fields = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value, is_var) = match (line.find('='), line.find(':')) {
            (Some(e), c) if c.map_or(true, |c| e < c) => (&line[..e], &line[e + 1..], true),
            (_, Some(c)) => (&line[..c], &line[c + 1..], false),
            _ => continue,
        };
        let mut expanded = String::new();
        let mut rest = value.trim();
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            expanded.push_str(&rest[..start]);
            expanded.push_str(vars.get(&rest[start + 2..end]).map(String::as_str).unwrap_or(""));
            rest = &rest[(end + 1).min(rest.len())..];
        }
        expanded.push_str(rest);
        let map = if is_var { &mut vars } else { &mut fields };
        map.insert(key.trim().to_string(), expanded);
    }
    fields.extend(vars);
    fields
}

/// Configures, builds and installs the library of this repository (CPU only)
/// under OUT_DIR; returns its kvserve.pc.
fn build_from_repo() -> PathBuf {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.join("../..");
    if !repo.join("CMakeLists.txt").is_file() {
        fail("no KVSERVE_DIR, no pkg-config kvserve, and no kvserve repository above this crate to build");
    }
    for dir in ["src", "include", "CMakeLists.txt", "cmake"] {
        println!("cargo:rerun-if-changed={}", repo.join(dir).display());
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let (build, prefix) = (out.join("cmake-build"), out.join("prefix"));
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let run = |args: &[&str]| {
        let status = Command::new("cmake").args(args).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => fail(&format!("cmake {} failed ({s})", args.join(" "))),
            Err(e) => fail(&format!("cmake not found ({e}); install it, or point KVSERVE_DIR at an installed kvserve")),
        }
    };
    let (repo_s, build_s, prefix_s) =
        (repo.display().to_string(), build.display().to_string(), prefix.display().to_string());
    run(&[
        "-S",
        &repo_s,
        "-B",
        &build_s,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DKVSERVE_ENABLE_CUDA=OFF",
        "-DKVSERVE_ENABLE_TESTS=OFF",
        "-DKVSERVE_ENABLE_CLI=OFF",
        "-DCMAKE_INSTALL_LIBDIR=lib",
    ]);
    run(&["--build", &build_s, "-j", &jobs]);
    run(&["--install", &build_s, "--prefix", &prefix_s]);
    prefix.join("lib/pkgconfig/kvserve.pc")
}
