//! A bound on what the tar reader holds in memory for one entry's headers.
//!
//! The `tar` crate reads a PAX extended header (`x`) and a GNU long name or
//! long link (`L`, `K`) whole into memory before it yields the entry they
//! describe, and says nothing of their size first: a 64 MiB header
//! compresses to a few KB and would be allocated before any limit of ours
//! is asked. So the decompressed stream is read through [`Metered`], which
//! counts every byte and, while the tar reader looks for the next entry,
//! lets it read at most [`MAX_HEADER`] (plus the few header blocks one
//! entry may have): beyond that the read fails and [`Meter::tripped`]
//! says why. A global header (`g`) is yielded as an entry, so its size is
//! checked before its data is read (see `Extractor::tar`).
//!
//! Parsing the header blocks ourselves would mean a second tar parser that
//! must agree with the crate's on every offset (PAX `size`, GNU sparse maps);
//! metering the reads the crate makes cannot disagree with it.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The most bytes of extended headers (PAX records, GNU long names and
/// links) one entry may have. Real ones are a few hundred bytes.
pub(super) const MAX_HEADER: u64 = 1 << 20;

/// Header blocks and padding around the extended headers of one entry: the
/// entry's own header, one per extension (`x`, `L`, `K`) and the padding
/// after the previous entry's data.
const SLACK: u64 = 8 * 512;

/// Shared between the reader the tar crate owns and the extractor.
#[derive(Default)]
pub(super) struct Meter {
    /// Bytes of the tar stream read so far.
    pos: Cell<u64>,
    /// While the tar reader looks for the next entry: bytes it may still read.
    left: Cell<Option<u64>>,
    tripped: Cell<bool>,
}

impl Meter {
    /// Bytes of the tar stream read so far.
    pub(super) fn pos(&self) -> u64 {
        self.pos.get()
    }

    /// Bounds the reads until [`Meter::entry_found`]: the tar reader is
    /// about to read the next entry's headers.
    pub(super) fn reading_headers(&self) {
        self.left.set(Some(MAX_HEADER + SLACK));
    }

    /// Lifts the bound: the entry's data is read by the extractor, under
    /// its own limits.
    pub(super) fn entry_found(&self) {
        self.left.set(None);
    }

    /// Whether a read failed because the headers of one entry were too big.
    pub(super) fn tripped(&self) -> bool {
        self.tripped.get()
    }
}

/// A reader counting through a [`Meter`].
pub(super) struct Metered<R> {
    pub(super) inner: R,
    pub(super) meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let m = &self.meter;
        let mut len = buf.len();
        if let Some(left) = m.left.get() {
            if left == 0 && !buf.is_empty() {
                m.tripped.set(true);
                return Err(io::Error::other(format!(
                    "the headers of one tar entry exceed {MAX_HEADER} bytes"
                )));
            }
            len = len.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..len])?;
        m.pos.set(m.pos.get() + n as u64);
        if let Some(left) = m.left.get() {
            m.left.set(Some(left - n as u64));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_only_while_headers_are_read() {
        let meter = Rc::new(Meter::default());
        let data = vec![7u8; 4 << 20];
        let mut r = Metered {
            inner: &data[..],
            meter: meter.clone(),
        };
        let mut sink = Vec::new();
        (&mut r).take(2 << 20).read_to_end(&mut sink).unwrap();
        assert_eq!(meter.pos(), 2 << 20);
        meter.reading_headers();
        let e = r.read_to_end(&mut sink).unwrap_err();
        assert!(meter.tripped(), "{e}");
        assert_eq!(meter.pos(), (3 << 20) + SLACK);
        meter.entry_found();
        assert!(r.read_to_end(&mut sink).is_ok());
    }
}
