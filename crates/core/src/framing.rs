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

// ---------------------------------------------------------------------------
// Streaming JSON array splitter
// ---------------------------------------------------------------------------

use std::fmt;

/// How one element of the streamed array ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementEnd {
    /// The element is whole in `bytes`.
    Complete,
    /// The element is longer than the limit: `bytes` holds only its beginning and
    /// `len` is its full length. Its end was found, so reading goes on after it.
    Oversized { len: u64 },
    /// The input ended inside the element: `bytes` holds what there was.
    Truncated,
}

/// One element of the array, as the raw bytes of its JSON text.
#[derive(Debug)]
pub struct ArrayElement<'a> {
    /// 0-based position in the array.
    pub index: u64,
    /// 1-based line of the decoded stream where the element starts.
    pub line: u64,
    pub bytes: &'a [u8],
    pub end: ElementEnd,
}

/// The start of an element as far as the reader holds it (see
/// [`JsonArraySplitter::peek_element`]).
#[derive(Debug)]
pub struct BufferedElement<'a> {
    /// 0-based position in the array.
    pub index: u64,
    /// 1-based line of the decoded stream where the element starts.
    pub line: u64,
    /// The buffered input from the element's first byte on: the element and
    /// whatever follows it, or only the element's beginning.
    pub bytes: &'a [u8],
}

/// What [`JsonArraySplitter::resync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// Nothing to recover: the broken element stands alone.
    Nothing,
    /// Another element started inside the broken one, after this many bytes:
    /// the element is cut there and the rest is read again.
    Cut(usize),
    /// The broken element ended early: this many bytes after it that were no
    /// element were added to it.
    Skipped(u64),
}

/// Why the splitter stopped.
#[derive(Debug)]
pub enum SplitError {
    /// The reader failed; the caller decides whether that is a read or a codec error.
    Io(io::Error),
    /// The document around the array is not what it should be (no such array,
    /// cut short, trailing data). Every element before this point has been returned.
    Format {
        line: u64,
        record: Option<u64>,
        reason: String,
    },
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Io(e) => write!(f, "reading failed: {e}"),
            SplitError::Format { line, reason, .. } => write!(f, "line {line}: {reason}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the array: reading the root object's keys.
    Start,
    /// Inside the array, between elements.
    Elements,
    /// The last element was cut off by the end of the input.
    Truncated,
    Done,
}

/// The decoded stream, with bytes handed back by [`JsonArraySplitter::resync`]
/// read again before it, and the line count of everything consumed.
struct SplitInput<R> {
    inner: R,
    replay: Vec<u8>,
    replay_pos: usize,
    line: u64,
}

impl<R: BufRead> SplitInput<R> {
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.replay_pos < self.replay.len() {
            return Ok(&self.replay[self.replay_pos..]);
        }
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // Returns the buffer filled above without reading again.
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize, newlines: u64) {
        self.line += newlines;
        if self.replay_pos < self.replay.len() {
            self.replay_pos += n;
            if self.replay_pos >= self.replay.len() {
                self.replay.clear();
                self.replay_pos = 0;
            }
        } else {
            self.inner.consume(n);
        }
    }
}

/// Line feeds in `bytes`: how far a line count moves over them.
pub fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Where a value scan is, kept across the chunks of the stream.
#[derive(Debug, Clone, Copy)]
struct ValueScan {
    kind: ValueKind,
    depth: u64,
    in_str: bool,
    /// The chunk ended on a backslash inside a string: the next byte is escaped.
    escape: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Container {
        open: u8,
        close: u8,
    },
    Str,
    /// A literal (`true`, `12`) or bytes that are no JSON at all.
    Bare,
}

impl ValueScan {
    /// Starts a scan at the value's first byte, which the caller has consumed.
    fn start(first: u8) -> Self {
        let (kind, depth, in_str) = match first {
            b'{' => (
                ValueKind::Container {
                    open: b'{',
                    close: b'}',
                },
                1,
                false,
            ),
            b'[' => (
                ValueKind::Container {
                    open: b'[',
                    close: b']',
                },
                1,
                false,
            ),
            b'"' => (ValueKind::Str, 0, true),
            _ => (ValueKind::Bare, 0, false),
        };
        ValueScan {
            kind,
            depth,
            in_str,
            escape: false,
        }
    }

    /// Scans `data` for the end of the value: `Some(n)` when it ends after
    /// `data[..n]`, `None` when all of `data` belongs to it.
    ///
    /// Only the value's own kind of bracket is counted: a well-formed value
    /// balances the other kind inside it, and a malformed one is caught by the
    /// parser that reads the element afterwards. That keeps the search to three
    /// bytes, which `memchr3` finds many bytes at a time.
    #[inline]
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        if self.escape {
            if data.is_empty() {
                return None;
            }
            self.escape = false;
            i = 1;
        }
        match self.kind {
            ValueKind::Container { open, close } => {
                while i < data.len() {
                    if self.in_str {
                        let j = i + memchr::memchr2(b'"', b'\\', &data[i..])?;
                        if data[j] == b'"' {
                            self.in_str = false;
                            i = j + 1;
                        } else if j + 1 < data.len() {
                            i = j + 2;
                        } else {
                            self.escape = true;
                            return None;
                        }
                    } else {
                        let j = i + memchr::memchr3(b'"', open, close, &data[i..])?;
                        i = j + 1;
                        match data[j] {
                            b'"' => self.in_str = true,
                            c if c == open => self.depth += 1,
                            _ => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    return Some(i);
                                }
                            }
                        }
                    }
                }
                None
            }
            ValueKind::Str => {
                while i < data.len() {
                    let j = i + memchr::memchr2(b'"', b'\\', &data[i..])?;
                    if data[j] == b'"' {
                        self.in_str = false;
                        return Some(j + 1);
                    } else if j + 1 < data.len() {
                        i = j + 2;
                    } else {
                        self.escape = true;
                        return None;
                    }
                }
                None
            }
            // A bad line in the middle of the array ends at its newline, so it is
            // one rejected element rather than one per word.
            ValueKind::Bare => data[i..]
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b'{' | b'[' | b'\n' | b'\r'))
                .map(|p| i + p),
        }
    }
}

/// A UTF-8 byte order mark, which some tools put before JSON.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads the elements of one array inside a JSON document, e.g. the `Records` of
/// a CloudTrail file, one at a time from a stream, without ever holding more than
/// one element: memory is bounded by `max_bytes`, whatever the document's size.
///
/// The document is a JSON object with the array under `key`; other keys before
/// and after it are skipped without being buffered. Each element comes back as
/// raw bytes with its index and starting line, for a parser of the caller's
/// choice. The splitter finds element boundaries by strings and bracket depth
/// only; checking the JSON inside an element is the parser's job, and when the
/// parser finds an element broken, [`resync`](Self::resync) finds where the next
/// good element starts.
pub struct JsonArraySplitter<R> {
    input: SplitInput<R>,
    key: Vec<u8>,
    max_bytes: usize,
    phase: Phase,
    buf: Vec<u8>,
    key_buf: Vec<u8>,
    next_index: u64,
    /// The last element returned, while it may still be resynchronised.
    last: Option<ElementEnd>,
    /// The first key of the elements (`eventVersion` in CloudTrail): where a new
    /// element starts when one is broken.
    anchor: Option<Vec<u8>>,
    /// `anchor` was read from a whole element rather than given.
    anchor_learned: bool,
    /// Index and line of an element the reader failed inside of.
    interrupted: Option<(u64, u64)>,
}

/// Longest object key compared with the array's key; longer keys cannot match.
const MAX_KEY: usize = 256;

impl<R: BufRead> JsonArraySplitter<R> {
    /// A splitter over `inner` for the array under `key` in the root object.
    pub fn new(inner: R, key: &str, max_bytes: usize) -> Self {
        JsonArraySplitter {
            input: SplitInput {
                inner,
                replay: Vec::new(),
                replay_pos: 0,
                line: 1,
            },
            key: key.as_bytes().to_vec(),
            max_bytes,
            phase: Phase::Start,
            buf: Vec::with_capacity(16 * 1024),
            key_buf: Vec::with_capacity(64),
            next_index: 0,
            last: None,
            anchor: None,
            anchor_learned: false,
            interrupted: None,
        }
    }

    /// Sets the key that element objects are expected to start with, so that a
    /// broken element can be resynchronised before a good one has been seen. The
    /// first key of the first whole object element replaces it: the data knows
    /// its own layout better than the caller.
    pub fn with_resync_key(mut self, first_key: &str) -> Self {
        self.anchor = Some(first_key.as_bytes().to_vec());
        self
    }

    /// Elements started so far (the next element's index).
    pub fn elements(&self) -> u64 {
        self.next_index
    }

    /// The current 1-based line of the decoded stream.
    pub fn line(&self) -> u64 {
        self.input.line
    }

    /// The bytes of the element returned last (after [`resync`](Self::resync),
    /// only its broken part).
    pub fn element_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// After a reader error inside an element: its index, line and the bytes
    /// read of it, so that the caller can keep what there was.
    pub fn interrupted_element(&self) -> Option<(u64, u64, &[u8])> {
        self.interrupted
            .map(|(index, line)| (index, line, self.buf.as_slice()))
    }

    /// The next element, `Ok(None)` at the end of a well-formed document, or the
    /// error that ends the document.
    pub fn next_element(&mut self) -> Result<Option<ArrayElement<'_>>, SplitError> {
        self.last = None;
        let Some(first) = self.advance_to_element()? else {
            return Ok(None);
        };
        let index = self.next_index;
        self.next_index += 1;
        let line = self.input.line;
        self.buf.clear();
        let end = match self.scan_value(first, true) {
            Ok(end) => end,
            Err(e) => {
                self.interrupted = Some((index, line));
                return Err(e);
            }
        };
        if end == ElementEnd::Truncated {
            self.phase = Phase::Truncated;
        }
        if end == ElementEnd::Complete && !self.anchor_learned {
            if let Some(key) = first_key(&self.buf) {
                self.anchor = Some(key.to_vec());
                self.anchor_learned = true;
            }
        }
        self.last = Some(end);
        Ok(Some(ArrayElement {
            index,
            line,
            bytes: &self.buf,
            end,
        }))
    }

    /// The fast path: all the input the reader already holds from the next
    /// element's first byte on, not consumed, for a parser that finds the ends of
    /// elements itself and so spares the splitter's scan and copy. The parser
    /// reads as many whole elements there as it can (keeping to
    /// [`max_bytes`](Self::max_bytes) each, and stepping over the `,` between
    /// them), then calls [`commit`](Self::commit) with how far it got; what it
    /// could not read (an element going on past the buffer, a broken or oversized
    /// one) [`next_element`](Self::next_element) reads the careful way.
    /// `Ok(None)` at the end of the array.
    pub fn peek_element(&mut self) -> Result<Option<BufferedElement<'_>>, SplitError> {
        self.last = None;
        if self.advance_to_element()?.is_none() {
            return Ok(None);
        }
        let (index, line) = (self.next_index, self.input.line);
        let data = self.input.fill().map_err(SplitError::Io)?;
        Ok(Some(BufferedElement {
            index,
            line,
            bytes: data,
        }))
    }

    /// Takes the first `len` bytes of what [`peek_element`](Self::peek_element)
    /// returned as `elements` elements (and the separators between them).
    pub fn commit(&mut self, len: usize, elements: u64) -> Result<(), SplitError> {
        let data = self.input.fill().map_err(SplitError::Io)?;
        let taken = &data[..len.min(data.len())];
        if !self.anchor_learned && elements > 0 {
            if let Some(key) = first_key(taken) {
                self.anchor = Some(key.to_vec());
                self.anchor_learned = true;
            }
        }
        let (n, nl) = (taken.len(), count_newlines(taken));
        self.input.consume(n, nl);
        self.next_index += elements;
        Ok(())
    }

    /// The longest element the caller should accept (see
    /// [`peek_element`](Self::peek_element)).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Moves to the first byte of the next element and returns it, or `None` at
    /// the end of the array.
    fn advance_to_element(&mut self) -> Result<Option<u8>, SplitError> {
        loop {
            match self.phase {
                Phase::Done => return Ok(None),
                Phase::Truncated => {
                    self.phase = Phase::Done;
                    return Err(self.format_error(
                        Some(self.next_index.saturating_sub(1)),
                        "the document ends inside a record (truncated file?)".into(),
                    ));
                }
                Phase::Start => self.find_array()?,
                Phase::Elements => break,
            }
        }
        // Separators between elements; stray commas are passed over.
        loop {
            match self.peek_non_ws()? {
                None => {
                    self.phase = Phase::Done;
                    return Err(self.format_error(
                        None,
                        format!(
                            "the document ends inside the \"{}\" array after {} record(s) (truncated file?)",
                            String::from_utf8_lossy(&self.key),
                            self.next_index
                        ),
                    ));
                }
                Some(b',') => self.input.consume(1, 0),
                Some(b']') => {
                    self.input.consume(1, 0);
                    self.phase = Phase::Done;
                    self.read_trailer()?;
                    return Ok(None);
                }
                Some(b) => return Ok(Some(b)),
            }
        }
    }

    /// Call when the element just returned turned out to be broken JSON: finds
    /// where the next good element starts, so that one broken record costs one
    /// rejected element, not its neighbours nor a trail of fragments.
    ///
    /// - If another element starts inside it (an object opening with the anchor
    ///   key after a comma: a record swallowed by its broken neighbour), the
    ///   element is cut there and the rest is read again ([`Resync::Cut`]).
    /// - If it ended early instead (a lost quote turns strings inside out), so
    ///   that what follows it is not the start of an element, everything up to
    ///   the next element start is added to it ([`Resync::Skipped`]).
    ///
    /// After it, [`element_bytes`](Self::element_bytes) holds the broken part.
    pub fn resync(&mut self) -> Result<Resync, SplitError> {
        let Some(last) = self.last.take() else {
            return Ok(Resync::Nothing);
        };
        let Some(anchor) = self.anchor.as_deref() else {
            return Ok(Resync::Nothing);
        };
        // The middle of an oversized element was never kept: it cannot be read again.
        if matches!(last, ElementEnd::Oversized { .. }) {
            return Ok(Resync::Nothing);
        }
        if let Some(cut) = find_element_start(&self.buf, anchor) {
            let mut replay = self.buf[cut..].to_vec();
            replay.extend_from_slice(&self.input.replay[self.input.replay_pos..]);
            self.input.line = self
                .input
                .line
                .saturating_sub(count_newlines(&self.buf[cut..]));
            self.input.replay = replay;
            self.input.replay_pos = 0;
            self.buf.truncate(cut);
            self.phase = Phase::Elements;
            return Ok(Resync::Cut(cut));
        }
        if last != ElementEnd::Complete {
            return Ok(Resync::Nothing);
        }
        // What follows a whole element is `]`, or `,` and the next one.
        match self.peek_non_ws()? {
            Some(b'{' | b']') | None => return Ok(Resync::Nothing),
            Some(b',') => {
                self.input.consume(1, 0);
                if matches!(self.peek_non_ws()?, Some(b'{' | b']') | None) {
                    return Ok(Resync::Nothing);
                }
            }
            Some(_) => {}
        }
        self.skip_to_anchor().map(Resync::Skipped)
    }

    /// Consumes the input up to the next `,` `{` `"<anchor>"` (whitespace
    /// allowed between), adding it to `buf` as far as `max_bytes` allows, and
    /// leaves the `{...` to be read next. Returns the bytes skipped; at the end
    /// of the input, all of them. A rare path: it goes byte by byte.
    fn skip_to_anchor(&mut self) -> Result<u64, SplitError> {
        #[derive(Clone, Copy)]
        enum State {
            WantComma,
            AfterComma,
            /// In a candidate `{`, with this much of the quoted key matched.
            Candidate(usize),
        }
        let mut quoted = vec![b'"'];
        quoted.extend_from_slice(self.anchor.as_deref().unwrap_or_default());
        quoted.push(b'"');
        let max = self.max_bytes;
        let mut skipped: u64 = 0;
        let mut junk = |buf: &mut Vec<u8>, bytes: &[u8]| {
            skipped += bytes.len() as u64;
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let mut state = State::WantComma;
        let mut candidate: Vec<u8> = Vec::new();
        loop {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.is_empty() {
                junk(&mut self.buf, &candidate);
                return Ok(skipped);
            }
            let mut found = None;
            for (i, &b) in data.iter().enumerate() {
                state = match state {
                    State::AfterComma if b == b'{' => {
                        candidate.push(b);
                        State::Candidate(0)
                    }
                    State::Candidate(k) => {
                        candidate.push(b);
                        if k == 0 && b.is_ascii_whitespace() {
                            State::Candidate(0)
                        } else if b == quoted[k] && k + 1 == quoted.len() {
                            found = Some(i + 1);
                            break;
                        } else if b == quoted[k] {
                            State::Candidate(k + 1)
                        } else {
                            // Not an element start after all.
                            junk(&mut self.buf, &candidate);
                            candidate.clear();
                            if b == b',' {
                                State::AfterComma
                            } else {
                                State::WantComma
                            }
                        }
                    }
                    State::WantComma | State::AfterComma => {
                        junk(&mut self.buf, &[b]);
                        match (state, b) {
                            (_, b',') => State::AfterComma,
                            (State::AfterComma, b) if b.is_ascii_whitespace() => State::AfterComma,
                            _ => State::WantComma,
                        }
                    }
                };
            }
            let end = found.unwrap_or(data.len());
            let nl = count_newlines(&data[..end]);
            self.input.consume(end, nl);
            if found.is_some() {
                // The candidate starts the next element: read it again.
                self.input.line = self.input.line.saturating_sub(count_newlines(&candidate));
                candidate.extend_from_slice(&self.input.replay[self.input.replay_pos..]);
                self.input.replay = candidate;
                self.input.replay_pos = 0;
                return Ok(skipped);
            }
        }
    }

    fn format_error(&self, record: Option<u64>, reason: String) -> SplitError {
        SplitError::Format {
            line: self.input.line,
            record,
            reason,
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek_non_ws(&mut self) -> Result<Option<u8>, SplitError> {
        loop {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.is_empty() {
                return Ok(None);
            }
            match data.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(p) => {
                    let b = data[p];
                    let nl = count_newlines(&data[..p]);
                    self.input.consume(p, nl);
                    return Ok(Some(b));
                }
                None => {
                    let (n, nl) = (data.len(), count_newlines(data));
                    self.input.consume(n, nl);
                }
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), SplitError> {
        match self.peek_non_ws()? {
            Some(b) if b == want => {
                self.input.consume(1, 0);
                Ok(())
            }
            Some(b) => {
                Err(self.format_error(None, format!("expected {what} but found {}", describe(b))))
            }
            None => Err(self.format_error(
                None,
                format!("the document ends where {what} was expected (truncated file?)"),
            )),
        }
    }

    /// Reads the root object's keys up to the array, skipping other values.
    fn find_array(&mut self) -> Result<(), SplitError> {
        self.phase = Phase::Done;
        for &bom in BOM {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.first() != Some(&bom) {
                break;
            }
            self.input.consume(1, 0);
        }
        match self.peek_non_ws()? {
            Some(b'{') => self.input.consume(1, 0),
            Some(b) => {
                return Err(self.format_error(
                    None,
                    format!(
                        "not a JSON object with a \"{}\" array: it starts with {}",
                        String::from_utf8_lossy(&self.key),
                        describe(b)
                    ),
                ))
            }
            None => {
                return Err(self.format_error(
                    None,
                    format!(
                        "empty document: no \"{}\" array",
                        String::from_utf8_lossy(&self.key)
                    ),
                ))
            }
        }
        let mut first = true;
        loop {
            match self.peek_non_ws()? {
                Some(b'}') => {
                    return Err(self.format_error(
                        None,
                        format!(
                            "the document has no \"{}\" array",
                            String::from_utf8_lossy(&self.key)
                        ),
                    ))
                }
                Some(b',') if !first => self.input.consume(1, 0),
                _ if first => {}
                Some(b) => {
                    return Err(self.format_error(
                        None,
                        format!("expected `,` or `}}` but found {}", describe(b)),
                    ))
                }
                None => {
                    return Err(self.format_error(
                        None,
                        format!(
                            "the document ends before a \"{}\" array (truncated file?)",
                            String::from_utf8_lossy(&self.key)
                        ),
                    ))
                }
            }
            first = false;
            let is_ours = self.read_key()?;
            self.expect(b':', "`:`")?;
            let value = self.peek_non_ws()?;
            if is_ours {
                return match value {
                    Some(b'[') => {
                        self.input.consume(1, 0);
                        self.phase = Phase::Elements;
                        Ok(())
                    }
                    Some(b) => Err(self.format_error(
                        None,
                        format!(
                            "\"{}\" is not an array: its value starts with {}",
                            String::from_utf8_lossy(&self.key),
                            describe(b)
                        ),
                    )),
                    None => Err(self.format_error(
                        None,
                        "the document ends after its key (truncated file?)".into(),
                    )),
                };
            }
            self.skip_value(value)?;
        }
    }

    /// After the array: the rest of the root object, then only whitespace.
    fn read_trailer(&mut self) -> Result<(), SplitError> {
        loop {
            match self.peek_non_ws()? {
                Some(b'}') => {
                    self.input.consume(1, 0);
                    break;
                }
                Some(b',') => {
                    self.input.consume(1, 0);
                    self.read_key()?;
                    self.expect(b':', "`:`")?;
                    let value = self.peek_non_ws()?;
                    self.skip_value(value)?;
                }
                Some(b) => {
                    return Err(self.format_error(
                        None,
                        format!(
                            "expected `,` or `}}` after the array but found {}",
                            describe(b)
                        ),
                    ))
                }
                None => return Err(self.format_error(
                    None,
                    "the document ends after the array without its closing `}` (truncated file?)"
                        .into(),
                )),
            }
        }
        match self.peek_non_ws()? {
            None => Ok(()),
            Some(b) => Err(self.format_error(
                None,
                format!(
                    "unexpected data after the end of the document: {}",
                    describe(b)
                ),
            )),
        }
    }

    /// Reads an object key; whether it is the array's key.
    fn read_key(&mut self) -> Result<bool, SplitError> {
        self.expect(b'"', "an object key")?;
        self.key_buf.clear();
        let mut scan = ValueScan::start(b'"');
        loop {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.is_empty() {
                return Err(self.format_error(
                    None,
                    "the document ends inside an object key (truncated file?)".into(),
                ));
            }
            let (n, done) = match scan.scan(data) {
                Some(n) => (n, true),
                None => (data.len(), false),
            };
            let room = MAX_KEY.saturating_sub(self.key_buf.len());
            self.key_buf.extend_from_slice(&data[..n.min(room)]);
            let nl = count_newlines(&data[..n]);
            self.input.consume(n, nl);
            if done {
                break;
            }
        }
        // key_buf holds the key without its opening quote and with its closing one.
        Ok(self.key_buf.len() == self.key.len() + 1 && self.key_buf.starts_with(&self.key))
    }

    fn skip_value(&mut self, first: Option<u8>) -> Result<(), SplitError> {
        let Some(first) = first else {
            return Err(self.format_error(
                None,
                "the document ends where a value was expected (truncated file?)".into(),
            ));
        };
        match self.scan_value(first, false)? {
            ElementEnd::Truncated => Err(self.format_error(
                None,
                "the document ends inside a value (truncated file?)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Consumes one value starting with `first` (not yet consumed), copying it into
    /// `buf` up to `max_bytes` when `keep`.
    fn scan_value(&mut self, first: u8, keep: bool) -> Result<ElementEnd, SplitError> {
        let buf = keep.then_some(&mut self.buf);
        scan_value(&mut self.input, buf, self.max_bytes, first)
    }
}

/// Consumes one value starting with `first` (not yet consumed), copying it into
/// `buf` (when given) up to `max_bytes`.
fn scan_value<R: BufRead>(
    input: &mut SplitInput<R>,
    mut buf: Option<&mut Vec<u8>>,
    max_bytes: usize,
    first: u8,
) -> Result<ElementEnd, SplitError> {
    let mut scan = ValueScan::start(first);
    let mut len: u64 = 1;
    let mut over = false;
    if let Some(buf) = buf.as_deref_mut() {
        if max_bytes == 0 {
            over = true;
        } else {
            buf.push(first);
        }
    }
    input.consume(1, 0);
    loop {
        let data = input.fill().map_err(SplitError::Io)?;
        if data.is_empty() {
            // A literal ends where the input does; anything else is cut short.
            return Ok(if scan.kind == ValueKind::Bare {
                if over {
                    ElementEnd::Oversized { len }
                } else {
                    ElementEnd::Complete
                }
            } else {
                ElementEnd::Truncated
            });
        }
        let (n, done) = match scan.scan(data) {
            Some(n) => (n, true),
            None => (data.len(), false),
        };
        if let Some(buf) = buf.as_deref_mut().filter(|_| !over) {
            if buf.len() + n <= max_bytes {
                buf.extend_from_slice(&data[..n]);
            } else {
                over = true;
                let room = max_bytes - buf.len();
                buf.extend_from_slice(&data[..room]);
            }
        }
        len += n as u64;
        let nl = count_newlines(&data[..n]);
        input.consume(n, nl);
        if done {
            return Ok(if over {
                ElementEnd::Oversized { len }
            } else {
                ElementEnd::Complete
            });
        }
    }
}

/// The first key of a JSON object's text, when it has no escapes.
fn first_key(object: &[u8]) -> Option<&[u8]> {
    let rest = object.strip_prefix(b"{")?;
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = rest[start..].strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"' && end > 0).then(|| &rest[..end])
}

/// Where a following element starts inside a broken one: `, {` then the anchor
/// key, allowing whitespace between. Position 0 is the broken element itself.
fn find_element_start(bytes: &[u8], anchor: &[u8]) -> Option<usize> {
    let mut quoted = Vec::with_capacity(anchor.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(anchor);
    quoted.push(b'"');
    let before_ws = |end: usize| bytes[..end].iter().rposition(|b| !b.is_ascii_whitespace());
    memchr::memmem::find_iter(bytes, &quoted).find_map(|p| {
        let brace = before_ws(p)?;
        if brace == 0 || bytes[brace] != b'{' {
            return None;
        }
        let comma = before_ws(brace)?;
        (bytes[comma] == b',').then_some(brace)
    })
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
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
        type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a [u8], Compression);
        let cases: [Case; 6] = [
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

#[cfg(test)]
mod json_array_tests {
    use super::*;

    /// (index, line, text, outcome) of one element.
    type Split = (u64, u64, String, String);

    /// What the caller of the splitter would do: parse each element, resync when it
    /// is broken. Elements as (index, line, text, outcome), and the final error.
    fn split(input: &[u8], capacity: usize, max: usize) -> (Vec<Split>, Option<String>) {
        let reader = BufReader::with_capacity(capacity, input);
        let mut s = JsonArraySplitter::new(reader, "Records", max).with_resync_key("eventVersion");
        let mut got = Vec::new();
        loop {
            let el = match s.next_element() {
                Ok(Some(el)) => el,
                Ok(None) => return (got, None),
                Err(SplitError::Format {
                    line,
                    record,
                    reason,
                }) => return (got, Some(format!("{line}/{record:?}: {reason}"))),
                Err(SplitError::Io(e)) => panic!("{e}"),
            };
            let (index, line, end) = (el.index, el.line, el.end);
            let valid = serde_json::from_slice::<serde::de::IgnoredAny>(el.bytes).is_ok();
            let outcome = match end {
                ElementEnd::Complete if valid => "ok".to_string(),
                ElementEnd::Oversized { len } => format!("oversized {len}"),
                ElementEnd::Complete | ElementEnd::Truncated => {
                    let resync = s.resync().map_err(|e| e.to_string());
                    format!("broken {end:?} {resync:?}")
                }
            };
            let text = String::from_utf8_lossy(s.element_bytes()).into_owned();
            got.push((index, line, text, outcome));
        }
    }

    #[test]
    fn elements_are_split_the_same_whatever_the_chunk_size() {
        type Case = (
            &'static str,
            &'static str,
            &'static [(u64, u64, &'static str, &'static str)],
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "compact, braces and quotes inside strings",
                r#"{"Records":[{"a":1},{"b":"x}"},{"c":[1,{"d":"\"}"}]}]}"#,
                &[(0, 1, r#"{"a":1}"#, "ok"), (1, 1, r#"{"b":"x}"}"#, "ok"), (2, 1, r#"{"c":[1,{"d":"\"}"}]}"#, "ok")],
                None,
            ),
            (
                "pretty, other keys before and after",
                "\u{feff}{\n  \"Other\": {\"Records\": [1]},\n  \"Records\" : [\n    {\n      \"a\": 1\n    },\n    {\n      \"b\": \"]\"\n    }\n  ],\n  \"After\": [1, {\"x\": \"}\"}]\n}\n",
                &[(0, 4, "{\n      \"a\": 1\n    }", "ok"), (1, 7, "{\n      \"b\": \"]\"\n    }", "ok")],
                None,
            ),
            ("empty array", r#"{"Records":[]}"#, &[], None),
            (
                "escaped backslashes and quotes",
                r#"{"Records":[{"a":"\\"},{"b":"\\\""},{"c":"\\\\"}]}"#,
                &[(0, 1, r#"{"a":"\\"}"#, "ok"), (1, 1, r#"{"b":"\\\""}"#, "ok"), (2, 1, r#"{"c":"\\\\"}"#, "ok")],
                None,
            ),
            ("no Records", r#"{"logFiles":[{"a":1}]}"#, &[], Some("1/None: the document has no \"Records\" array")),
            ("Records is null", r#"{"Records":null}"#, &[], Some("1/None: \"Records\" is not an array: its value starts with `n`")),
            ("empty document", "  \n", &[], Some("2/None: empty document: no \"Records\" array")),
            ("not an object", "[1,2]", &[], Some("1/None: not a JSON object with a \"Records\" array: it starts with `[`")),
            (
                "truncated inside a record",
                "{\"Records\":[{\"a\":1},\n{\"b\":",
                &[(0, 1, r#"{"a":1}"#, "ok"), (1, 2, r#"{"b":"#, "broken Truncated Ok(Nothing)")],
                Some("2/Some(1): the document ends inside a record (truncated file?)"),
            ),
            (
                "truncated between records",
                r#"{"Records":[{"a":1},"#,
                &[(0, 1, r#"{"a":1}"#, "ok")],
                Some("1/None: the document ends inside the \"Records\" array after 1 record(s) (truncated file?)"),
            ),
            (
                "no closing brace",
                r#"{"Records":[{"a":1}]"#,
                &[(0, 1, r#"{"a":1}"#, "ok")],
                Some("1/None: the document ends after the array without its closing `}` (truncated file?)"),
            ),
            (
                "trailing data",
                r#"{"Records":[{"a":1}]} x"#,
                &[(0, 1, r#"{"a":1}"#, "ok")],
                Some("1/None: unexpected data after the end of the document: `x`"),
            ),
            (
                "a line that is not JSON between records",
                "{\"Records\":[\n{\"a\":1},\nthis is not json\n,{\"b\":2}\n]}",
                &[(0, 2, r#"{"a":1}"#, "ok"), (1, 3, "this is not json", "broken Complete Ok(Nothing)"), (2, 4, r#"{"b":2}"#, "ok")],
                None,
            ),
            (
                "a record without its closing brace swallows its neighbours until resync",
                r#"{"Records":[{"eventVersion":"1","a":{"b":1},{"eventVersion":"2"},{"eventVersion":"3"}]}"#,
                &[
                    (0, 1, r#"{"eventVersion":"1","a":{"b":1},"#, "broken Complete Ok(Cut(32))"),
                    (1, 1, r#"{"eventVersion":"2"}"#, "ok"),
                    (2, 1, r#"{"eventVersion":"3"}"#, "ok"),
                ],
                None,
            ),
            (
                "a lost quote turns strings inside out until resync",
                "{\"Records\":[\n{\"eventVersion\":\"1\",\"a\":\"x},\n{\"eventVersion\":\"2\",\"b\":1},\n{\"eventVersion\":\"3\"}]}",
                &[
                    (0, 2, "{\"eventVersion\":\"1\",\"a\":\"x},\n", "broken Truncated Ok(Cut(29))"),
                    (1, 3, r#"{"eventVersion":"2","b":1}"#, "ok"),
                    (2, 4, r#"{"eventVersion":"3"}"#, "ok"),
                ],
                None,
            ),
            (
                "an oversized record is cut and skipped, not buffered",
                r#"{"Records":[{"a":1},{"b":"012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"},{"c":3}]}"#,
                &[(0, 1, r#"{"a":1}"#, "ok"), (1, 1, r#"{"b":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123"#, "oversized 128"), (2, 1, r#"{"c":3}"#, "ok")],
                None,
            ),
        ];
        for (name, input, want, want_err) in cases {
            for capacity in [1, 2, 3, 5, 16, 4096] {
                let (got, err) = split(input.as_bytes(), capacity, 100);
                let got: Vec<_> = got
                    .iter()
                    .map(|(i, l, t, o)| (*i, *l, t.as_str(), o.as_str()))
                    .collect();
                assert_eq!(&got, want, "{name} (capacity {capacity})");
                assert_eq!(err.as_deref(), *want_err, "{name} (capacity {capacity})");
            }
        }
    }

    #[test]
    fn reader_errors_come_back_as_io_errors() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let data = br#"{"Records":[{"a":1},{"b":2}"#;
                if self.0 >= data.len() {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
                }
                let n = buf.len().min(data.len() - self.0);
                buf[..n].copy_from_slice(&data[self.0..self.0 + n]);
                self.0 += n;
                Ok(n)
            }
        }
        let mut s =
            JsonArraySplitter::new(BufReader::with_capacity(8, Failing(0)), "Records", 1024);
        let mut n = 0;
        let err = loop {
            match s.next_element() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 2);
        assert!(
            matches!(err, SplitError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------
// Streaming splitter of concatenated JSON values
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamPhase {
    /// Before the first value, or after a top-level array.
    Start,
    /// Between top-level values.
    Values,
    /// Between the elements of a top-level array.
    Array,
    Done,
}

/// Reads a stream of JSON values one at a time, with memory bounded by
/// `max_bytes` whatever the stream's size. It takes every way writers put
/// several objects in one file: concatenated with nothing between them (`}{`,
/// as Firehose delivers records), one a line (JSON lines), pretty-printed one
/// after another, or as the elements of a top-level array. Values come back as
/// [`ArrayElement`]s (raw bytes, 0-based index, starting line); as with
/// [`JsonArraySplitter`], boundaries come from strings and bracket depth only,
/// and checking the JSON inside a value is the parser's job.
pub struct JsonObjects<R> {
    input: SplitInput<R>,
    max_bytes: usize,
    phase: StreamPhase,
    buf: Vec<u8>,
    next_index: u64,
}

/// A [`JsonObjects`] splitter over `inner`, keeping values up to `max_bytes`.
pub fn json_objects<R: BufRead>(inner: R, max_bytes: usize) -> JsonObjects<R> {
    JsonObjects {
        input: SplitInput {
            inner,
            replay: Vec::new(),
            replay_pos: 0,
            line: 1,
        },
        max_bytes,
        phase: StreamPhase::Start,
        buf: Vec::with_capacity(16 * 1024),
        next_index: 0,
    }
}

impl<R: BufRead> JsonObjects<R> {
    /// Values started so far (the next value's index).
    pub fn values(&self) -> u64 {
        self.next_index
    }

    /// The current 1-based line of the decoded stream.
    pub fn line(&self) -> u64 {
        self.input.line
    }

    /// The next value, `Ok(None)` at the end of the stream. A value cut short by
    /// the end of the input comes back as [`ElementEnd::Truncated`] and is the
    /// last; one over `max_bytes` as [`ElementEnd::Oversized`], and reading goes
    /// on after it. `Err` only when the reader fails, or a top-level array is
    /// cut short between elements.
    pub fn next_value(&mut self) -> Result<Option<ArrayElement<'_>>, SplitError> {
        let first = loop {
            match self.phase {
                StreamPhase::Done => return Ok(None),
                StreamPhase::Start => {
                    self.skip_bom()?;
                    match self.peek_non_ws()? {
                        None => {
                            self.phase = StreamPhase::Done;
                            return Ok(None);
                        }
                        Some(b'[') => {
                            self.input.consume(1, 0);
                            self.phase = StreamPhase::Array;
                        }
                        Some(_) => self.phase = StreamPhase::Values,
                    }
                }
                StreamPhase::Values => match self.peek_non_ws()? {
                    None => {
                        self.phase = StreamPhase::Done;
                        return Ok(None);
                    }
                    // Not JSON between values, but some writers join records with
                    // commas; a comma separates nothing that would be lost.
                    Some(b',') => self.input.consume(1, 0),
                    Some(b) => break b,
                },
                StreamPhase::Array => match self.peek_non_ws()? {
                    None => {
                        self.phase = StreamPhase::Done;
                        return Err(SplitError::Format {
                            line: self.input.line,
                            record: None,
                            reason: format!(
                                "the document ends inside its top-level array after {} value(s) (truncated file?)",
                                self.next_index
                            ),
                        });
                    }
                    Some(b',') => self.input.consume(1, 0),
                    Some(b']') => {
                        self.input.consume(1, 0);
                        self.phase = StreamPhase::Start;
                    }
                    Some(b) => break b,
                },
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        let line = self.input.line;
        self.buf.clear();
        let end = scan_value(&mut self.input, Some(&mut self.buf), self.max_bytes, first)?;
        if end == ElementEnd::Truncated {
            self.phase = StreamPhase::Done;
        }
        Ok(Some(ArrayElement {
            index,
            line,
            bytes: &self.buf,
            end,
        }))
    }

    fn skip_bom(&mut self) -> Result<(), SplitError> {
        for &bom in BOM {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.first() != Some(&bom) {
                break;
            }
            self.input.consume(1, 0);
        }
        Ok(())
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek_non_ws(&mut self) -> Result<Option<u8>, SplitError> {
        loop {
            let data = self.input.fill().map_err(SplitError::Io)?;
            if data.is_empty() {
                return Ok(None);
            }
            match data.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(p) => {
                    let b = data[p];
                    let nl = count_newlines(&data[..p]);
                    self.input.consume(p, nl);
                    return Ok(Some(b));
                }
                None => {
                    let (n, nl) = (data.len(), count_newlines(data));
                    self.input.consume(n, nl);
                }
            }
        }
    }
}

#[cfg(test)]
mod json_objects_tests {
    use super::*;

    /// (index, line, text, end) of one value.
    type Value = (u64, u64, String, String);

    /// Each value, and the final error.
    fn split(input: &[u8], capacity: usize, max: usize) -> (Vec<Value>, Option<String>) {
        let mut s = json_objects(BufReader::with_capacity(capacity, input), max);
        let mut got = Vec::new();
        loop {
            match s.next_value() {
                Ok(Some(v)) => got.push((
                    v.index,
                    v.line,
                    String::from_utf8_lossy(v.bytes).into_owned(),
                    format!("{:?}", v.end),
                )),
                Ok(None) => return (got, None),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn values_are_split_the_same_whatever_the_chunk_size() {
        type Case = (
            &'static str,
            &'static str,
            &'static [(u64, u64, &'static str, &'static str)],
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "concatenated with no separator (Firehose)",
                r#"{"a":"}{"}{"b":[1,{"c":"\"}"}]}{}"#,
                &[(0, 1, r#"{"a":"}{"}"#, "Complete"), (1, 1, r#"{"b":[1,{"c":"\"}"}]}"#, "Complete"), (2, 1, "{}", "Complete")],
                None,
            ),
            (
                "JSON lines with a blank line and CRLF",
                "{\"a\":1}\r\n\r\n{\"b\":2}\n",
                &[(0, 1, r#"{"a":1}"#, "Complete"), (1, 3, r#"{"b":2}"#, "Complete")],
                None,
            ),
            (
                "pretty-printed documents one after another, with a BOM",
                "\u{feff}{\n  \"a\": 1\n}\n{\n  \"b\": {\n    \"c\": 2\n  }\n}",
                &[(0, 1, "{\n  \"a\": 1\n}", "Complete"), (1, 4, "{\n  \"b\": {\n    \"c\": 2\n  }\n}", "Complete")],
                None,
            ),
            (
                "a top-level array",
                "[\n {\"a\":1},\n {\"b\":\"]\"}\n]\n",
                &[(0, 2, r#"{"a":1}"#, "Complete"), (1, 3, r#"{"b":"]"}"#, "Complete")],
                None,
            ),
            (
                "an empty array and an empty stream",
                " [ ] \n",
                &[],
                None,
            ),
            (
                "a line of junk between objects is one value of its own",
                "{\"a\":1}\nnot json\n{\"b\":2}",
                &[(0, 1, r#"{"a":1}"#, "Complete"), (1, 2, "not json", "Complete"), (2, 3, r#"{"b":2}"#, "Complete")],
                None,
            ),
            (
                "the last object cut short",
                "{\"a\":1}{\"b\":{\"c\"",
                &[(0, 1, r#"{"a":1}"#, "Complete"), (1, 1, r#"{"b":{"c""#, "Truncated")],
                None,
            ),
            (
                "an array cut short between elements",
                "[{\"a\":1},",
                &[(0, 1, r#"{"a":1}"#, "Complete")],
                Some("line 1: the document ends inside its top-level array after 1 value(s) (truncated file?)"),
            ),
            (
                "an oversized object is cut and skipped, not buffered",
                r#"{"a":1}{"b":"0123456789012345678901234567890123456789"}{"c":3}"#,
                &[(0, 1, r#"{"a":1}"#, "Complete"), (1, 1, r#"{"b":"01234567890123456789012345"#, "Oversized { len: 48 }"), (2, 1, r#"{"c":3}"#, "Complete")],
                None,
            ),
        ];
        for (name, input, want, want_err) in cases {
            for capacity in [1, 2, 3, 7, 4096] {
                let (got, err) = split(input.as_bytes(), capacity, 32);
                let got: Vec<_> = got
                    .iter()
                    .map(|(i, l, t, e)| (*i, *l, t.as_str(), e.as_str()))
                    .collect();
                assert_eq!(&got, want, "{name} (capacity {capacity})");
                assert_eq!(err.as_deref(), *want_err, "{name} (capacity {capacity})");
            }
        }
    }
}
