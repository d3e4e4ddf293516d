//! Rebuild when a migration is added or changed: `refinery::embed_migrations!` reads
//! `migrations/` at compile time, and cargo does not see a new file there by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
