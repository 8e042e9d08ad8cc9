// `sqlx::migrate!` embeds the migrations at compile time; without this a new migration
// file would not rebuild the crate and tests would run on a stale schema.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
