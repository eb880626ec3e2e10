//! The built-in plugins, compiled to WebAssembly by `build.rs` and embedded in
//! the binary; they load through the same sandbox as external components.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The component bytes of the built-in plugin `name`.
pub(crate) fn bytes(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The names of all built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}
