//! Builds the first-party connectors (`plugins/`, a separate cargo workspace) to
//! `wasm32-wasip2` so the server embeds them: a server binary always carries its catalogue.
//!
//! The components are built in release mode into `TRAINFLOW_PLUGINS_TARGET_DIR` (default
//! `plugins/target`); cargo's own caching makes rebuilds cheap. The `wasm32-wasip2` target is
//! added with rustup when it is missing.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = crate_dir.join("../..");
    let plugins = root.join("plugins");
    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/csv",
        "plugins/excel",
        "plugins/testing",
        "sdk/Cargo.toml",
        "sdk/src",
        "wit/connector",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=TRAINFLOW_PLUGINS_TARGET_DIR");

    let target_dir = env::var_os("TRAINFLOW_PLUGINS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| plugins.join("target"));
    ensure_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"));
    // What the outer build set for the host crates must not leak into the component build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_DIR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "PROFILE",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "OPT_LEVEL",
        "DEBUG",
    ] {
        build.env_remove(var);
    }
    build.env("CARGO_TARGET_DIR", &target_dir);
    let status = build
        .status()
        .expect("running cargo to build the first-party connectors");
    assert!(
        status.success(),
        "building the first-party connectors (plugins/) failed"
    );
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=TRAINFLOW_PLUGINS_DIR={}", out.display());
}

/// Adds the `wasm32-wasip2` target when the toolchain lacks it.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let installed =
        sysroot.is_some_and(|s| PathBuf::from(s).join("lib/rustlib/wasm32-wasip2").exists());
    if !installed {
        println!("cargo:warning=adding the wasm32-wasip2 target with rustup");
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the wasm32-wasip2 target is missing and rustup could not add it"
        );
    }
}
