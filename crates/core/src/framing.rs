//! Compression and framing: how the bytes of an object become records.
//!
//! Compression is chosen from what the object says about itself (Content-Encoding,
//! Content-Type) checked against its first bytes; never from the key's suffix, which
//! lies often enough (`.gz` keys holding plain text, gzip under `.log`).

use crate::error::{Error, Location};
use flate2::bufread::MultiGzDecoder;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Buffer between the decoder and the record splitter. Large enough that the
/// per-read overhead vanishes, small enough to keep memory flat.
pub const BUF_SIZE: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    None,
}

/// Decides the compression of an object. The headers say what the writer meant;
/// the magic bytes say what is there. Where they disagree the bytes win, because
/// some clients set `Content-Encoding: gzip` and others transparently inflate.
pub fn detect_compression(
    content_encoding: Option<&str>,
    content_type: Option<&str>,
    head: &[u8],
) -> Compression {
    let has_magic = head.starts_with(&GZIP_MAGIC);
    let says_gzip = content_encoding.is_some_and(|ce| {
        ce.split(',')
            .any(|t| matches!(t.trim().to_ascii_lowercase().as_str(), "gzip" | "x-gzip"))
    }) || content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/gzip") || ct.starts_with("application/x-gzip")
    });
    match (says_gzip, has_magic) {
        (_, true) => Compression::Gzip,
        (true, false) | (false, false) => Compression::None,
    }
}

/// Remembers whether the underlying stream failed, so that an error coming out of
/// the decoder can be told apart: a failing stream is worth a retry, corrupt data is not.
pub struct ReadErrorFlag<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for ReadErrorFlag<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|_| self.failed.store(true, Ordering::Relaxed))
    }
}

/// Classifies an I/O error met while reading decoded data.
#[derive(Clone, Default)]
pub struct ErrorClassifier {
    failed: Arc<AtomicBool>,
    compression: Option<Compression>,
}

impl ErrorClassifier {
    pub fn classify(&self, at: Location, source: io::Error) -> Error {
        if self.failed.load(Ordering::Relaxed) || self.compression != Some(Compression::Gzip) {
            Error::Read { at, source }
        } else {
            Error::Decompress { at, source }
        }
    }
}

/// The decoded byte stream of an object, and what was learnt opening it.
pub struct Decoded {
    pub reader: Box<dyn BufRead + Send>,
    pub compression: Compression,
    pub errors: ErrorClassifier,
}

/// Opens `raw` as a decoded stream. Multi-member gzip (concatenated members, as ALB
/// and Firehose write) is read to the end, not just its first member.
pub fn decode<R: Read + Send + 'static>(
    raw: R,
    content_encoding: Option<&str>,
    content_type: Option<&str>,
    object: &str,
) -> Result<Decoded, Error> {
    let failed = Arc::new(AtomicBool::new(false));
    let mut buffered = BufReader::with_capacity(
        BUF_SIZE,
        ReadErrorFlag {
            inner: raw,
            failed: failed.clone(),
        },
    );
    let head = loop {
        match buffered.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Read {
                    at: Location::object(object),
                    source,
                })
            }
        }
    };
    let compression = detect_compression(content_encoding, content_type, head);
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF_SIZE,
            MultiGzDecoder::new(buffered),
        )),
        Compression::None => Box::new(buffered),
    };
    Ok(Decoded {
        reader,
        compression,
        errors: ErrorClassifier {
            failed,
            compression: Some(compression),
        },
    })
}

/// Reads the first up to `n` decoded bytes without consuming them, for content sniffing.
pub fn peek(reader: &mut dyn BufRead, n: usize) -> io::Result<&[u8]> {
    let buf = reader.fill_buf()?;
    Ok(&buf[..buf.len().min(n)])
}

/// One line of a text log, without its line ending.
pub struct Line<'a> {
    /// 1-based line number in the decoded stream.
    pub number: u64,
    pub bytes: &'a [u8],
    /// The line was longer than the limit and `bytes` holds only its beginning.
    pub truncated: bool,
}

/// Splits a decoded stream into lines with bounded memory: a line longer than
/// `max_len` is returned cut (and flagged) and the rest of it is skipped, so a file
/// without newlines cannot make us buffer gigabytes.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    number: u64,
    max_len: usize,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(4096),
            number: 0,
            max_len,
        }
    }

    /// Lines read so far.
    pub fn line_number(&self) -> u64 {
        self.number
    }

    pub fn next_line(&mut self) -> Option<io::Result<Line<'_>>> {
        self.buf.clear();
        let mut truncated = false;
        let mut any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            };
            if available.is_empty() {
                if !any {
                    return None;
                }
                break;
            }
            any = true;
            let (chunk, consumed, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            let room = self.max_len.saturating_sub(self.buf.len());
            if chunk.len() > room {
                truncated = true;
            }
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.inner.consume(consumed);
            if done {
                break;
            }
        }
        self.number += 1;
        if !truncated && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Some(Ok(Line {
            number: self.number,
            bytes: &self.buf,
            truncated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn compression_comes_from_headers_checked_against_bytes() {
        let gzip = gz(b"x");
        let cases: [(Option<&str>, Option<&str>, &[u8], Compression); 6] = [
            (Some("gzip"), None, &gzip, Compression::Gzip),
            (None, Some("application/x-gzip"), &gzip, Compression::Gzip),
            (None, None, &gzip, Compression::Gzip),
            (None, None, b"{\"Records\":[]}", Compression::None),
            // The header says gzip but a proxy already inflated it: trust the bytes.
            (
                Some("gzip"),
                Some("application/json"),
                b"{\"Records\":[]}",
                Compression::None,
            ),
            (
                Some("identity"),
                Some("text/plain"),
                b"version account-id",
                Compression::None,
            ),
        ];
        for (ce, ct, head, want) in cases {
            assert_eq!(detect_compression(ce, ct, head), want, "{ce:?} {ct:?}");
        }
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut data = gz(b"line one\n");
        data.extend(gz(b"line two\n"));
        let mut d = decode(std::io::Cursor::new(data), None, None, "t").unwrap();
        let mut s = String::new();
        d.reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "line one\nline two\n");
    }

    #[test]
    fn truncated_gzip_is_a_decompress_error_not_a_read_error() {
        let data = gz(&b"0123456789 abcdefghij\n".repeat(1000));
        let cut = data[..data.len() / 2].to_vec();
        let mut d = decode(std::io::Cursor::new(cut), Some("gzip"), None, "t").unwrap();
        let mut sink = Vec::new();
        let err = d.reader.read_to_end(&mut sink).unwrap_err();
        let err = d.errors.classify(Location::object("t"), err);
        assert!(matches!(err, Error::Decompress { .. }), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn lines_are_numbered_bounded_and_stripped() {
        let input = b"a\r\nbb\n\ntoo long for the limit\nlast".as_slice();
        let mut r = LineReader::new(input, 8);
        let mut got = Vec::new();
        while let Some(line) = r.next_line() {
            let line = line.unwrap();
            got.push((
                line.number,
                String::from_utf8_lossy(line.bytes).into_owned(),
                line.truncated,
            ));
        }
        assert_eq!(
            got,
            vec![
                (1, "a".into(), false),
                (2, "bb".into(), false),
                (3, "".into(), false),
                (4, "too long".into(), true),
                (5, "last".into(), false),
            ]
        );
    }
}
