//! Fingerprints the migrations, so that each test run clones its databases
//! from a template migrated with exactly the migrations compiled in.
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migration/src");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        hasher.write(file.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        hasher.write(&std::fs::read(&file).unwrap_or_default());
    }
    println!("cargo:rustc-env=MIGRATIONS_FINGERPRINT={:016x}", hasher.finish());
}
