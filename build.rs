//! Generates `$OUT_DIR/mosquitto_sys.rs`: Rust declarations for Mosquitto 2.0's plugin ABI, from the
//! system's headers (through our `include/mqtt_policy.h`), for `src/plugin/sys.rs` to include.
//!
//! Hygiene (after pgrx's `pgrx-bindgen`):
//! * only Mosquitto's own items are emitted (`mosquitto_*`, `MOSQ_*`, `mosq_*`), not libc's;
//! * the plugin entry points are blocklisted, because we *define* them (`src/plugin/ffi.rs`);
//! * every header that was read, and every environment variable that steers clang, reruns this script.
//!
//! The generated declarations of the broker's functions are never called directly: `src/plugin/ffi.rs`
//! resolves them at run time (see the comment on `BrokerApi` there) and only uses these declarations to
//! check, at compile time, that its function-pointer types match the headers.
//!
//! With `MOSQUITTO_21_INCLUDE_DIR` set to Mosquitto 2.1's `include/` folder (scripts/test.sh sets it from
//! `scripts/build-mosquitto.sh 2.1.2`), it also generates `$OUT_DIR/mosquitto21_sys.rs` from 2.1's
//! `mosquitto/broker.h` (through `include/mqtt_policy_21.h`) and sets `cfg(mosquitto_21_headers)`, so that
//! the hand-written types of the functions 2.1 added are checked too. Without it the build needs only
//! 2.0's headers.

use std::env;
use std::path::PathBuf;

const HEADER: &str = "include/mqtt_policy.h";
const HEADER_21: &str = "include/mqtt_policy_21.h";

fn main() {
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed={HEADER_21}");
    println!("cargo::rustc-check-cfg=cfg(mosquitto_21_headers)");
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "LIBCLANG_PATH",
        "CLANG_PATH",
        "BINDGEN_EXTRA_CLANG_ARGS",
        "MOSQUITTO_INCLUDE_DIR",
        "MOSQUITTO_21_INCLUDE_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let mut builder = bindgen::Builder::default()
        .header(HEADER)
        // Emits rerun-if-changed for every header clang opened (mosquitto*.h, stdint.h, ...).
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // Functions: only those the broker offers plugins (`mosquitto_broker.h`, every one exported by
        // 2.0.11). `mosquitto.h` also declares the client library's `mosquitto_*` functions, which the
        // broker does not export; they are left out so nobody calls one by accident.
        .allowlist_file(".*/mosquitto_broker\\.h")
        .allowlist_type("mosquitto_.*|mosq_.*|MOSQ_.*")
        .allowlist_var("MOSQ_.*|LIBMOSQUITTO_.*")
        // We implement these; declaring them as imports too would be misleading at best.
        .blocklist_function("mosquitto_plugin_(version|init|cleanup)")
        // The legacy (v2-v4) plugin interface: we do not implement it, and the broker does not export it.
        .blocklist_function("mosquitto_auth_.*")
        // Enums as plain integer constants: the broker passes and expects `int`, and an out-of-range value
        // in a Rust enum would be undefined behaviour.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        // `#define MOSQ_ACL_READ 0x01` and friends are compared with `int`s.
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        // Match `rust-version` in Cargo.toml (1.80: no `unsafe extern` blocks yet).
        .rust_target(match bindgen::RustTarget::stable(80, 0) {
            Ok(target) => target,
            Err(e) => panic!("bindgen does not know Rust 1.80: {e}"),
        })
        .layout_tests(true)
        .derive_default(true)
        .generate_comments(false);
    if let Ok(dir) = env::var("MOSQUITTO_INCLUDE_DIR") {
        builder = builder.clang_arg(format!("-I{dir}"));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!(
            "bindgen could not process {HEADER}: {e}\n\
             (it needs libclang and Mosquitto 2.0's headers: apt-get install libclang-dev mosquitto-dev libmosquitto-dev;\n\
             set MOSQUITTO_INCLUDE_DIR if they are not in the default include path)"
        )
    });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("mosquitto_sys.rs"))
        .expect("cannot write the generated bindings to OUT_DIR");
    if let Ok(dir) = env::var("MOSQUITTO_21_INCLUDE_DIR") {
        bindings_21(&dir, &out);
    }
}

/// The functions Mosquitto 2.1 added that `src/plugin/ffi.rs` looks up at run time (`Optional21`).
const FUNCTIONS_21: &[&str] = &["mosquitto_plugin_set_info", "mosquitto_complete_basic_auth"];

/// 2.1's declarations of [`FUNCTIONS_21`] (ffi.rs checks its types against them).
fn bindings_21(dir: &str, out: &std::path::Path) {
    let bindings = bindgen::Builder::default()
        .header(HEADER_21)
        .clang_arg(format!("-I{dir}"))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function(FUNCTIONS_21.join("|"))
        // Declared with 2.0's types (the module says `use super::*`), so a 2.1 signature that needs a
        // type 2.0 lacks fails the build here instead of being papered over.
        .blocklist_type(".*")
        .rust_target(match bindgen::RustTarget::stable(80, 0) {
            Ok(target) => target,
            Err(e) => panic!("bindgen does not know Rust 1.80: {e}"),
        })
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen could not process {HEADER_21} with MOSQUITTO_21_INCLUDE_DIR={dir}: {e}\n\
                 (it must be Mosquitto 2.1's include/ folder, as printed by scripts/build-mosquitto.sh 2.1.2; \
                 unset it to build from the 2.0 headers alone)"
            )
        });
    bindings
        .write_to_file(out.join("mosquitto21_sys.rs"))
        .expect("cannot write the generated 2.1 bindings to OUT_DIR");
    println!("cargo::rustc-cfg=mosquitto_21_headers");
}
