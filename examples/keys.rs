//! Prints the console's key table (Markdown), generated from the keymap: the table README.md
//! carries (a test checks that README.md contains exactly this).
//!
//! `cargo run --example keys`

fn main() {
    print!(
        "{}",
        steward::console::keymap::Keymap::default().markdown_table()
    );
}
