//! Records which commit the binary was built from, so results name the program that
//! produced them rather than whatever checkout they were run from.

use std::process::Command;

fn main() {
    let described = Command::new("git")
        // No optional locks: `describe --dirty` would otherwise refresh .git/index, whose
        // change makes the next cargo command build again.
        .args(["--no-optional-locks", "describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(d) = described {
        println!("cargo:rustc-env=STEPFLOW_GIT_DESCRIBE={d}");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=src");
}
