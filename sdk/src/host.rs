//! What the host offers a connector. Each call is checked by the host against the
//! installation's grants; nothing here reaches the network, the filesystem or the environment.

use crate::bindings::trainflow::connector::host as raw;

pub use raw::Level;

/// Appends a line to the run's log.
pub fn log(level: Level, message: &str) {
    raw::log(level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    raw::log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    raw::log(Level::Warn, message);
}

/// Reads a value of this installation's key-value store.
pub fn kv_get(key: &str) -> Option<Vec<u8>> {
    raw::kv_get(key)
}

/// Writes a value of this installation's key-value store.
pub fn kv_set(key: &str, value: &[u8]) -> Result<(), String> {
    raw::kv_set(key, value)
}

/// A secret declared in the manifest and set by the administrator.
pub fn secret(name: &str) -> Option<String> {
    raw::secret(name)
}

/// The host's current time, RFC 3339.
pub fn now() -> String {
    raw::now()
}
