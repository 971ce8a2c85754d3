//! The file uploaded for this run, read through the host in chunks.

use crate::bindings::trainflow::connector::host as raw;

/// The uploaded file, if the run has one.
pub struct UploadedFile {
    size: u64,
}

impl UploadedFile {
    /// The run's uploaded file, or `None` when it has none.
    pub fn open() -> Option<Self> {
        raw::file_size().map(|size| Self { size })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        raw::file_read(offset, len)
    }

    /// Reads bytes from `offset` until `want` returns true for what was read so far or the file
    /// ends, growing the read `chunk` bytes at a time.
    pub fn read_until(
        &self,
        offset: u64,
        chunk: u32,
        mut want: impl FnMut(&[u8], bool) -> bool,
    ) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        loop {
            let part = self.read_at(offset + buf.len() as u64, chunk)?;
            let at_end = part.is_empty() || offset + (buf.len() + part.len()) as u64 >= self.size;
            buf.extend_from_slice(&part);
            if at_end || want(&buf, at_end) {
                return Ok(buf);
            }
        }
    }
}
