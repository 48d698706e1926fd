//! Compiles the Slint screens (`ui/main.slint`) into Rust, with the element
//! debug information the tests' `ElementHandle` look-ups need.

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_debug_info(true);
    slint_build::compile_with_config("ui/main.slint", config).expect("the Slint screens compile");
}
