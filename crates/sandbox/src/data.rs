//! Image data: the bounded store (in memory, or one file per image beside `--state`), the checksums and format rules Glance 33 applies, and the `PUT`/`GET /v2/images/{id}/file` handlers (the upload is streamed, never read whole).
//!
//! Bound: the store never holds more than `cap` bytes of image data in
//! total (in memory and on disk alike), counting uploads in flight; an
//! upload that would pass it is answered 413 as Glance answers its
//! `image_size_cap`, after reading at most `cap` bytes of it.
//!
//! Known differences from Glance 33 (measured):
//! * format inspection knows qcow2 (magic `QFI\xfb`, virtual size from its
//!   header) and treats every other stream as raw; Glance also recognises
//!   vhd, vhdx, vmdk, vdi, qed, iso, gpt and luks, and runs GPT/MBR checks;
//! * after a 415 format mismatch Glance keeps the orphaned bytes (a second
//!   upload is a 500 and a download sends `Content-Length: None`); the
//!   sandbox keeps the checksums as Glance does but drops the bytes;
//! * a `Content-Range` request header (Glance's legacy form of `Range`) is
//!   ignored: the whole image is sent;
//! * `POST .../file` with a body that is not JSON: Glance answers 400
//!   `Malformed JSON in request body.` (it parses the body first); the
//!   sandbox 405 as Glance does without a body.
//! * the seed images are active without data: their download answers 204,
//!   as Glance does for an image without locations;
//! * the 413 past `--max-image-size` has Glance's `image_size_cap` text
//!   (from its source: the test Glance has no cap small enough to measure).
//!
//! On disk (with `--state`): `STATE.data/`, one file per image named by
//! the hex of its ID, written to a temporary file and renamed before the
//! image turns active. The journal records an upload's size, not its bytes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use md5::{Digest, Md5};

use crate::context::{self, forbidden_action, Ctx};
use crate::http::{ApiError, Request, Response};
use crate::image::{Image, STORE_ID};
use crate::images::{no_image, visible_index};
use crate::state::State;

/// Default for `--max-image-size`: 512 MiB.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 512 * 1024 * 1024;

/// Disk formats Glance 33 can inspect (oslo.utils `ALL_FORMATS` ∩ the
/// schema's enum): data of another format is refused for them.
const INSPECTABLE: &[&str] = &["raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "iso"];

/// The bytes of one image.
#[derive(Debug, Clone)]
enum Blob {
    Memory(Arc<Blocks>),
    File(PathBuf),
}

/// Bytes in memory as blocks: growing never reallocates or copies, so an
/// upload of N bytes takes N bytes plus less than one block of spare.
#[derive(Debug, Default)]
pub struct Blocks(Vec<Vec<u8>>);

/// Largest in-memory block.
const BLOCK: usize = 1 << 20;

impl Blocks {
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.0.last_mut() {
                Some(block) if block.len() < block.capacity() => {
                    let take = (block.capacity() - block.len()).min(bytes.len());
                    block.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                }
                _ => {
                    // Blocks double from 4 KiB up to BLOCK, so a small image
                    // takes little and a large one under BLOCK spare.
                    let held: usize = self.0.iter().map(Vec::len).sum();
                    self.0.push(Vec::with_capacity(held.clamp(4096, BLOCK)));
                }
            }
        }
    }
}

/// A reader over shared blocks.
struct BlocksReader {
    blocks: Arc<Blocks>,
    index: usize,
    offset: usize,
}

impl Read for BlocksReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(block) = self.blocks.0.get(self.index) {
            if self.offset < block.len() {
                let n = (block.len() - self.offset).min(buf.len());
                buf[..n].copy_from_slice(&block[self.offset..self.offset + n]);
                self.offset += n;
                return Ok(n);
            }
            self.index += 1;
            self.offset = 0;
        }
        Ok(0)
    }
}

/// Image data of all images, bounded by `cap` bytes in total.
#[derive(Debug)]
pub struct Store {
    cap: u64,
    /// Where files go (`Some` with `--state`): `STATE.data/`.
    dir: Option<PathBuf>,
    /// Bytes stored plus bytes reserved by uploads in flight.
    held: AtomicU64,
    blobs: Mutex<HashMap<String, (Blob, u64)>>,
}

/// What an upload read: the digests Glance stores and where the bytes are.
#[derive(Debug)]
pub struct Received {
    pub size: u64,
    pub md5: String,
    pub sha512: String,
    /// The first bytes, for format inspection.
    pub head: Vec<u8>,
    blob: Blob,
}

/// Why reading an upload stopped.
#[derive(Debug)]
pub enum ReceiveError {
    TooLarge,
    Io(io::Error),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// An empty store; with `state`, image files live beside that file in
    /// `STATE.data/`, one per image named by the hex of its ID (IDs are
    /// client-chosen text, never a path).
    pub fn new(cap: u64, state: Option<&Path>) -> Store {
        let dir = state.map(crate::state::data_dir);
        Store {
            cap,
            dir,
            held: AtomicU64::new(0),
            blobs: Mutex::new(HashMap::new()),
        }
    }

    fn blobs(&self) -> MutexGuard<'_, HashMap<String, (Blob, u64)>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file_for(&self, id: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join(hex(id.as_bytes())))
    }

    /// Picks up the data files of `images` written by an earlier run (an
    /// active image whose file is missing simply has no data: 204).
    pub fn load(&self, images: &[Image]) {
        let mut blobs = self.blobs();
        for img in images {
            let Some(path) = self.file_for(&img.id) else {
                return;
            };
            if let Ok(meta) = fs::metadata(&path) {
                self.held.fetch_add(meta.len(), Ordering::SeqCst);
                blobs.insert(img.id.clone(), (Blob::File(path), meta.len()));
            }
        }
    }

    /// Takes `n` more bytes from the budget, or refuses.
    fn reserve(&self, n: u64) -> bool {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(n).filter(|&t| t <= self.cap)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        let _ = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                Some(h.saturating_sub(n))
            });
    }

    /// Bytes held now (stored and in flight).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// The most bytes it holds (`--max-image-size`).
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Reads an upload to its end, hashing it and keeping it (in memory or
    /// in a temporary file), never past the budget; `declared` is the
    /// request's length when it has one, refused at once when too large.
    pub fn receive(
        &self,
        id: &str,
        body: &mut dyn Read,
        declared: Option<u64>,
    ) -> Result<Received, ReceiveError> {
        if let Some(n) = declared {
            if !self.reserve(n) {
                return Err(ReceiveError::TooLarge);
            }
            self.release(n);
        }
        let temp = self
            .file_for(id)
            .map(|p| p.with_extension(format!("tmp-{}", uuid::Uuid::new_v4())));
        let mut file = match (&temp, &self.dir) {
            (Some(p), Some(dir)) => {
                fs::create_dir_all(dir).map_err(ReceiveError::Io)?;
                Some(File::create(p).map_err(ReceiveError::Io)?)
            }
            _ => None,
        };
        let mut memory = Blocks::default();
        let (mut md5, mut sha) = (
            Md5::new(),
            ring::digest::Context::new(&ring::digest::SHA512),
        );
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(ReceiveError::Io(e)),
            };
            if !self.reserve(n as u64) {
                break Err(ReceiveError::TooLarge);
            }
            size += n as u64;
            let chunk = &buf[..n];
            md5.update(chunk);
            sha.update(chunk);
            if head.len() < 512 {
                let take = (512 - head.len()).min(n);
                head.extend_from_slice(&chunk[..take]);
            }
            match &mut file {
                Some(f) => {
                    if let Err(e) = f.write_all(chunk) {
                        break Err(ReceiveError::Io(e));
                    }
                }
                None => memory.push(chunk),
            }
        };
        let result = result.and_then(|()| match &mut file {
            Some(f) => f.sync_all().map_err(ReceiveError::Io),
            None => Ok(()),
        });
        if let Err(e) = result {
            self.release(size);
            if let Some(p) = &temp {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        let blob = match temp {
            Some(p) => Blob::File(p),
            None => Blob::Memory(Arc::new(memory)),
        };
        Ok(Received {
            size,
            md5: hex(&md5.finalize()),
            sha512: hex(sha.finish().as_ref()),
            head,
            blob,
        })
    }

    /// Gives back what `receive` kept when it is not stored after all.
    pub fn discard(&self, received: Received) {
        self.release(received.size);
        if let Blob::File(p) = received.blob {
            let _ = fs::remove_file(p);
        }
    }

    /// Makes received bytes the data of image `id`.
    fn commit(&self, id: &str, received: Received) -> io::Result<()> {
        let blob = match (received.blob, self.file_for(id)) {
            (Blob::File(temp), Some(path)) => {
                if let Err(e) = fs::rename(&temp, &path) {
                    let _ = fs::remove_file(&temp);
                    self.release(received.size);
                    return Err(e);
                }
                Blob::File(path)
            }
            (blob, _) => blob,
        };
        if let Some((_, old)) = self.blobs().insert(id.to_string(), (blob, received.size)) {
            self.release(old);
        }
        Ok(())
    }

    /// Drops the data of every image not in `images` (deleted ones).
    pub fn prune(&self, images: &[Image]) {
        let mut blobs = self.blobs();
        let gone: Vec<String> = blobs
            .keys()
            .filter(|id| !images.iter().any(|i| &i.id == *id))
            .cloned()
            .collect();
        for id in gone {
            if let Some((blob, size)) = blobs.remove(&id) {
                self.release(size);
                if let Blob::File(p) = blob {
                    let _ = fs::remove_file(p);
                }
            }
        }
    }

    /// The length of image `id`'s data, when it has data.
    pub(crate) fn size(&self, id: &str) -> Option<u64> {
        self.blobs().get(id).map(|(_, size)| *size)
    }

    /// A reader over image `id`'s bytes from `offset` on.
    pub(crate) fn open(&self, id: &str, offset: u64) -> Option<Box<dyn Read + Send>> {
        let (blob, _) = self.blobs().get(id).cloned()?;
        match blob {
            Blob::Memory(blocks) => {
                let (mut index, mut offset) = (0, usize::try_from(offset).ok()?);
                while blocks.0.get(index).is_some_and(|b| offset >= b.len()) {
                    offset -= blocks.0[index].len();
                    index += 1;
                }
                Some(Box::new(BlocksReader {
                    blocks,
                    index,
                    offset,
                }))
            }
            Blob::File(p) => {
                let mut f = File::open(p).ok()?;
                f.seek(SeekFrom::Start(offset)).ok()?;
                Some(Box::new(f))
            }
        }
    }
}

/// What a `Range` header asks of `size` bytes, as Glance 33 reads it
/// (webob's `Range.parse`, then `get_range_from_request` and the download
/// serializer): `Ok(None)` for the whole image, else the first byte, the
/// length and the `Content-Range` value.
pub fn byte_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64, String)>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let unsatisfiable = |detail: String| ApiError {
        status: 416,
        explanation: Some("The Range requested is not available.".into()),
        detail: Some(detail),
        headers: Vec::new(),
    };
    if header.contains(',') {
        return Err(ApiError::explained(
            400,
            "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.",
        ));
    }
    // `bytes *= *(\d*) *- *(\d*)`, case-insensitive, matched at the start.
    let invalid = || unsatisfiable("Invalid Range header.".into());
    let rest = header
        .get(..5)
        .filter(|b| b.eq_ignore_ascii_case("bytes"))
        .map(|_| header[5..].trim_start_matches(' '))
        .and_then(|r| r.strip_prefix('='))
        .ok_or_else(invalid)?
        .trim_start_matches(' ');
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (start, rest) = rest.split_at(digits(rest));
    let rest = rest
        .trim_start_matches(' ')
        .strip_prefix('-')
        .ok_or_else(invalid)?;
    let rest = rest.trim_start_matches(' ');
    let end = &rest[..digits(rest)];
    let num = |s: &str| s.parse::<u64>().map_err(|_| invalid());
    // webob: start and a non-inclusive end; a suffix is a negative start.
    let (start, end): (i128, Option<u64>) = match (start.is_empty(), end.is_empty()) {
        (true, true) => return Err(invalid()),
        (true, false) => (-i128::from(num(end)?), None),
        (false, true) => (i128::from(num(start)?), None),
        (false, false) => {
            let (s, e) = (num(start)?, num(end)?.saturating_add(1));
            if s >= e {
                return Err(invalid());
            }
            (i128::from(s), Some(e))
        }
    };
    if start >= i128::from(size) {
        return Err(unsatisfiable(format!(
            "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {}].",
            i128::from(size) - 1
        )));
    }
    let offset = if start >= 0 {
        start as u64
    } else if start.unsigned_abs() < u128::from(size) {
        (i128::from(size) + start) as u64
    } else {
        0
    };
    let (len, last) = match end {
        Some(e) if e < size => (e - offset, e - 1),
        _ => (size - offset, size - 1),
    };
    Ok(Some((offset, len, format!("bytes {offset}-{last}/{size}"))))
}

/// The image id of `/v2[.N]/images/{id}/file`.
pub fn file_target(url: &str) -> Option<&str> {
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    let mut segs = path.strip_prefix('/')?.split('/');
    let version = segs.next()?;
    let is_v2 = version == "v2"
        || version
            .strip_prefix("v2.")
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m <= crate::router::CURRENT_MINOR);
    match (is_v2, segs.next(), segs.next(), segs.next(), segs.next()) {
        (true, Some("images"), Some(id), Some("file"), None) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// The format Glance's inspector would report for a stream starting with
/// `head`, and the virtual size it reads (`None`: the actual size).
fn inspect(head: &[u8]) -> (&'static str, Option<u64>) {
    if head.len() >= 32 && head.starts_with(b"QFI\xfb") {
        let mut size = [0u8; 8];
        size.copy_from_slice(&head[24..32]);
        return ("qcow2", Some(u64::from_be_bytes(size)));
    }
    ("raw", None)
}

/// Glance's `ImageProxy.set_data` format rule: the `virtual_size` to store
/// (`None` for null), or the 415 text when the data does not match.
pub fn virtual_size(img: &Image, head: &[u8], size: u64) -> Result<Option<u64>, String> {
    if img.container_format.as_deref() != Some("bare") {
        return Ok(None);
    }
    let disk = img.disk_format.as_deref().unwrap_or("");
    let (format, inspected) = inspect(head);
    let vsize = if format == disk {
        inspected.unwrap_or(size)
    } else if format == "raw" && !INSPECTABLE.contains(&disk) {
        0
    } else if disk == "raw" {
        size
    } else {
        return Err(format!(
            "Image disk_format {disk} does not match stream data {format}"
        ));
    };
    // Glance: `if virtual_size: image.virtual_size = virtual_size`.
    Ok(Some(vsize).filter(|&v| v > 0))
}

/// The checks and answers every `/file` request shares with the rest of the
/// API: the sandbox token and the request id.
fn finish(req: &Request, outcome: Result<Response, ApiError>) -> Response {
    let request_id = match req.get_header("X-Openstack-Request-Id") {
        Some(id) => id.to_string(),
        None => format!("req-{}", uuid::Uuid::new_v4()),
    };
    let mut resp = match outcome {
        Ok(r) => r,
        Err(e) => e.render(req),
    };
    resp.headers
        .push(("x-openstack-request-id".to_string(), request_id));
    resp
}

/// The sandbox's authentication (`--token`, Keystone tokens), as for every
/// other protected route: the caller, or the 401 to send.
fn authenticate(state: &State, req: &Request) -> Result<Ctx, Response> {
    let base = match req.get_header("Host") {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => state.base_url.clone(),
    };
    context::authenticate(state, req, &base)
}

fn other_method() -> ApiError {
    ApiError::bare(405).with_header("Allow", "GET, PUT")
}

/// Glance's upload deserializer: the content type, then the size header.
fn check_upload_request(req: &Request) -> Result<Option<u64>, ApiError> {
    let ct = req.get_header("Content-Type");
    let media = ct.map(|c| c.split(';').next().unwrap_or("").trim());
    if media != Some("application/octet-stream") {
        return Err(ApiError::detailed(
            415,
            format!("Invalid content type {}", ct.unwrap_or("None")),
        ));
    }
    let bad_size = || ApiError::explained(400, "Invalid or missing image size in request headers.");
    if let Some(v) = req.get_header("x-openstack-image-size") {
        v.trim().parse::<i64>().map_err(|_| bad_size())?;
    }
    match req.get_header("Content-Length") {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| bad_size()),
    }
}

/// Phase one of an upload, under the state lock: checks as Glance does and
/// moves the image to `saving`. Returns the image's index.
fn begin_upload(state: &mut State, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    let img = &mut state.images[i];
    let owns = img.owner.as_deref() == Some(ctx.project.as_str());
    if !(ctx.can_write && (ctx.is_admin || owns)) {
        return Err(forbidden_action("upload_image"));
    }
    let missing: Vec<&str> = [
        ("disk_format", &img.disk_format),
        ("container_format", &img.container_format),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| k)
    .collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            return Err(ApiError::explained(
                400,
                format!("Property {one} must be set prior to saving data."),
            ))
        }
        many => {
            return Err(ApiError::explained(
                400,
                format!(
                    "Properties {} must be set prior to saving data.",
                    many.join(", ")
                ),
            ))
        }
    }
    if img.status != "queued" {
        return Err(ApiError::explained(
            409,
            format!(
                "Image status transition from {} to saving is not allowed",
                img.status
            ),
        ));
    }
    img.status = "saving".into();
    state.dirty = true;
    Ok(())
}

/// Phase three, under the lock again: the image becomes `active` with the
/// digests, or goes back to `queued` when the data cannot be kept.
fn end_upload(
    state: &mut State,
    store: &Store,
    id: &str,
    received: Result<Received, ReceiveError>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let Some(i) = state.position(id) else {
        if let Ok(r) = received {
            store.discard(r);
        }
        return Err(no_image(id));
    };
    state.dirty = true;
    let img = &mut state.images[i];
    img.status = "queued".into();
    img.updated_at = now;
    let received = match received {
        Ok(r) => r,
        Err(ReceiveError::TooLarge) => {
            return Err(ApiError::explained(
                413,
                "The incoming image is too large: The provided image is too large.",
            ))
        }
        Err(ReceiveError::Io(e)) => {
            super::note(&format!("cannot store image data for {id}: {e}"));
            return Err(ApiError::bare(500));
        }
    };
    // Glance has computed the digests when it inspects the format, and
    // keeps them on the queued image when the format does not match.
    img.checksum = Some(received.md5.clone());
    img.os_hash_algo = Some("sha512".into());
    img.os_hash_value = Some(received.sha512.clone());
    let vsize = match virtual_size(img, &received.head, received.size) {
        Ok(v) => v,
        Err(msg) => {
            // Glance has written the bytes to its store by then (it lists
            // the store), but they are orphaned: the sandbox drops them.
            img.stores = Some(STORE_ID.into());
            store.discard(received);
            return Err(ApiError::detailed(415, msg));
        }
    };
    let size = received.size;
    if let Err(e) = store.commit(id, received) {
        super::note(&format!("cannot store image data for {id}: {e}"));
        return Err(ApiError::bare(500));
    }
    let img = &mut state.images[i];
    img.size = i64::try_from(size).ok();
    img.virtual_size = vsize.and_then(|v| i64::try_from(v).ok());
    img.stores = Some(STORE_ID.into());
    img.status = "active".into();
    Ok(Response::empty(204).with_header("Content-Type", "text/html; charset=UTF-8"))
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `PUT /v2/images/{id}/file`: the state is locked only while checking and
/// while recording the result, not while `body` streams in.
pub fn upload(
    shared: &Mutex<State>,
    store: &Store,
    req: &Request,
    id: &str,
    body: &mut dyn Read,
) -> Response {
    let declared = {
        let mut state = lock(shared);
        let ctx = match authenticate(&state, req) {
            Ok(ctx) => ctx,
            Err(resp) => return finish(req, Ok(resp)),
        };
        let checked = check_upload_request(req)
            .and_then(|declared| begin_upload(&mut state, &ctx, id).map(|()| declared));
        match checked {
            Ok(declared) => declared,
            Err(e) => return finish(req, Err(e)),
        }
    };
    let received = store.receive(id, body, declared);
    let mut state = lock(shared);
    let outcome = end_upload(&mut state, store, id, received);
    finish(req, outcome)
}

/// A download answer: the response head, and the bytes to stream after it.
pub struct Download {
    pub response: Response,
    pub body: Option<(Box<dyn Read + Send>, u64)>,
}

/// `GET /v2/images/{id}/file` (`OPTIONS`: 200; other methods: 405), under
/// the state lock.
pub fn download(state: &State, store: &Store, req: &Request, id: &str) -> Download {
    let plain = |outcome| Download {
        response: finish(req, outcome),
        body: None,
    };
    let ctx = match authenticate(state, req) {
        Ok(ctx) => ctx,
        Err(resp) => return plain(Ok(resp)),
    };
    // As every other authenticated route (measured: Glance 33 answers
    // OPTIONS on /file 200 with no body).
    if req.method == "OPTIONS" {
        return plain(Ok(Response::empty(200)));
    }
    if req.method != "GET" {
        return plain(Err(other_method()));
    }
    let Some(i) = visible_index(state, &ctx, id) else {
        return plain(Err(no_image(id)));
    };
    let img = &state.images[i];
    if img.status == "deactivated" && !ctx.is_admin {
        return plain(Err(ApiError::explained(
            403,
            "The requested image has been deactivated. Image data download is forbidden.",
        )));
    }
    let Some(size) = store.size(id) else {
        return plain(Ok(Response::empty(204)));
    };
    let (status, offset, len, content_range) = match byte_range(req.get_header("Range"), size) {
        Ok(None) => (200, 0, size, None),
        Ok(Some((offset, len, cr))) => (206, offset, len, Some(cr)),
        Err(e) => return plain(Err(e)),
    };
    let Some(reader) = store.open(id, offset) else {
        return plain(Ok(Response::empty(204)));
    };
    let mut response =
        Response::empty(status).with_header("Content-Type", "application/octet-stream");
    if let Some(cr) = content_range {
        response = response.with_header("Content-Range", &cr);
    }
    if let Some(sum) = &img.checksum {
        response = response.with_header("Content-MD5", sum);
    }
    Download {
        response: finish(req, Ok(response)),
        body: Some((Box::new(reader.take(len)), len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::seed_images;

    const SEED: &str = "33ad552d-1149-471c-8190-ff6776174a00";

    fn state() -> Mutex<State> {
        let mut s = State::new(seed_images(), "http://sandbox", None);
        s.fixed_now = Some("2026-12-01T00:00:00Z".into());
        Mutex::new(s)
    }

    fn queued(s: &Mutex<State>, disk: Option<&str>, container: Option<&str>) -> String {
        let mut st = s.lock().unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let mut img = Image::new_queued(
            id.clone(),
            Some(crate::image::DEFAULT_PROJECT.into()),
            "2026-12-01T00:00:00Z",
        );
        img.disk_format = disk.map(Into::into);
        img.container_format = container.map(Into::into);
        st.images.push(img);
        id
    }

    fn put(s: &Mutex<State>, store: &Store, id: &str, ct: Option<&str>, data: &[u8]) -> Response {
        let mut req = Request::new("PUT", &format!("/v2/images/{id}/file"))
            .header("Accept", "application/json");
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        upload(s, store, &req, id, &mut &data[..])
    }

    fn get(s: &Mutex<State>, store: &Store, id: &str, roles: Option<&str>) -> (Response, Vec<u8>) {
        let mut req = Request::new("GET", &format!("/v2/images/{id}/file"));
        if let Some(r) = roles {
            req = req.header("X-Roles", r);
        }
        let st = s.lock().unwrap();
        let d = download(&st, store, &req, id);
        let mut bytes = Vec::new();
        if let Some((mut r, n)) = d.body {
            r.read_to_end(&mut bytes).unwrap();
            assert_eq!(n, bytes.len() as u64);
        }
        (d.response, bytes)
    }

    const OCT: Option<&str> = Some("application/octet-stream");

    #[test]
    fn upload_then_download_like_glance() {
        let s = state();
        let store = Store::new(1 << 20, None);
        let id = queued(&s, Some("raw"), Some("bare"));
        let mut data: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        data.extend_from_slice(b"hello");
        assert_eq!(get(&s, &store, &id, None).0.status, 204);
        let r = put(&s, &store, &id, OCT, &data);
        assert_eq!(r.status, 204);
        {
            let st = s.lock().unwrap();
            let img = st.get(&id).unwrap();
            assert_eq!(img.status, "active");
            assert_eq!(img.size, Some(1029));
            assert_eq!(img.virtual_size, Some(1029));
            // Measured on Glance 33 for these 1029 bytes.
            assert_eq!(
                img.checksum.as_deref(),
                Some("23f07ef5f66d2af3e6f8e7786fc9effb")
            );
            assert_eq!(
                img.os_hash_value.as_deref().unwrap()[..16],
                *"1668a0c5277b0888"
            );
            assert_eq!(img.stores.as_deref(), Some("fs"));
        }
        let (r, bytes) = get(&s, &store, &id, None);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("Content-MD5"),
            Some("23f07ef5f66d2af3e6f8e7786fc9effb")
        );
        assert_eq!(bytes, data);
        let again = put(&s, &store, &id, OCT, b"x");
        assert_eq!(again.status, 409);
        assert!(again
            .body_text()
            .contains("Image status transition from active to saving is not allowed"));
        assert_eq!(store.held(), 1029);
    }

    #[test]
    fn empty_upload_has_no_virtual_size() {
        let s = state();
        let store = Store::new(10, None);
        let id = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &store, &id, OCT, b"").status, 204);
        let st = s.lock().unwrap();
        let img = st.get(&id).unwrap();
        assert_eq!((img.size, img.virtual_size), (Some(0), None));
        assert_eq!(
            img.checksum.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
    }

    #[test]
    fn refusals_in_glance_order() {
        let s = state();
        let store = Store::new(100, None);
        let id = queued(&s, Some("raw"), Some("bare"));
        let r = put(&s, &store, &id, Some("application/json"), b"x");
        assert_eq!(r.status, 415);
        assert!(
            r.body_text()
                .contains("Invalid content type application/json"),
            "{}",
            r.body_text()
        );
        let r = put(&s, &store, &id, None, b"x");
        assert!(
            r.body_text().contains("${CONTENT_TYPE}")
                && r.body_text().contains("Invalid content type None")
        );
        let nf = queued(&s, None, None);
        assert_eq!(put(&s, &store, &nf, OCT, b"x").status, 400);
        assert_eq!(put(&s, &store, "nope", OCT, b"x").status, 404);
        // Over the cap: 413, the image is queued again, nothing is held.
        let r = put(&s, &store, &id, OCT, &[0u8; 101]);
        assert_eq!(r.status, 413);
        assert!(r.body_text().contains("The incoming image is too large"));
        assert_eq!(s.lock().unwrap().get(&id).unwrap().status, "queued");
        assert_eq!(store.held(), 0);
        // qcow2 image, raw data: 415, queued, digests kept, no data.
        let q = queued(&s, Some("qcow2"), Some("bare"));
        let r = put(&s, &store, &q, OCT, b"xx");
        assert_eq!(r.status, 415);
        assert!(r
            .body_text()
            .contains("Image disk_format qcow2 does not match stream data raw"));
        let st = s.lock().unwrap();
        let img = st.get(&q).unwrap();
        assert_eq!((img.status.as_str(), img.size), ("queued", None));
        assert!(img.checksum.is_some());
        drop(st);
        assert_eq!(get(&s, &store, &q, None).0.status, 204);
    }

    #[test]
    fn total_cap_counts_every_image_and_frees_on_delete() {
        let s = state();
        let store = Store::new(10, None);
        let a = queued(&s, Some("raw"), Some("bare"));
        let b = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &store, &a, OCT, &[1u8; 6]).status, 204);
        assert_eq!(put(&s, &store, &b, OCT, &[1u8; 6]).status, 413);
        let mut st = s.lock().unwrap();
        st.images.retain(|i| i.id != a);
        store.prune(&st.images);
        drop(st);
        assert_eq!(store.held(), 0);
        assert_eq!(put(&s, &store, &b, OCT, &[1u8; 6]).status, 204);
    }

    #[test]
    fn deactivated_download_is_admin_only() {
        let s = state();
        let store = Store::new(100, None);
        let id = queued(&s, Some("raw"), Some("bare"));
        put(&s, &store, &id, OCT, b"abc");
        s.lock()
            .unwrap()
            .images
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap()
            .status = "deactivated".into();
        assert_eq!(get(&s, &store, &id, None).0.status, 200);
        let (r, _) = get(&s, &store, &id, Some("reader,member"));
        assert_eq!(r.status, 403);
        assert!(r.body_text().contains("has been deactivated"));
    }

    #[test]
    fn files_beside_the_state_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("ims-data-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let state_file = dir.join("state.json");
        let s = state();
        let store = Store::new(100, Some(&state_file));
        let id = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &store, &id, OCT, b"persisted").status, 204);
        let file = dir.join("state.json.data").join(hex(id.as_bytes()));
        assert!(file.exists(), "named by the hex of the id in STATE.data/");
        let again = Store::new(100, Some(&state_file));
        again.load(&s.lock().unwrap().images);
        assert_eq!(again.held(), 9);
        assert_eq!(get(&s, &again, &id, None).1, b"persisted");
        s.lock().unwrap().images.retain(|i| i.id != id);
        again.prune(&s.lock().unwrap().images);
        assert!(!file.exists());
        assert_eq!(
            fs::read_dir(dir.join("state.json.data")).unwrap().count(),
            0,
            "no temporary files left"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn blocks_read_back_what_was_pushed() {
        let mut blocks = Blocks::default();
        let data: Vec<u8> = (0..(2 * BLOCK + 77)).map(|i| (i % 251) as u8).collect();
        for part in data.chunks(100_003) {
            blocks.push(part);
        }
        let spare: usize = blocks.0.iter().map(|b| b.capacity() - b.len()).sum();
        assert!(spare < BLOCK, "{spare} bytes spare");
        let mut small = Blocks::default();
        small.push(b"tiny");
        assert_eq!(small.0[0].capacity(), 4096);
        let mut back = Vec::new();
        let mut reader = BlocksReader {
            blocks: Arc::new(blocks),
            index: 0,
            offset: 0,
        };
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert_eq!(back, data);
    }

    #[test]
    fn ranges_as_measured_on_glance() {
        let ok = |h: &str| byte_range(Some(h), 1029).unwrap().unwrap();
        assert_eq!(ok("bytes=0-9"), (0, 10, "bytes 0-9/1029".into()));
        assert_eq!(ok("bytes=1020-"), (1020, 9, "bytes 1020-1028/1029".into()));
        assert_eq!(ok("bytes=-5"), (1024, 5, "bytes 1024-1028/1029".into()));
        assert_eq!(
            ok("bytes=1025-2000"),
            (1025, 4, "bytes 1025-1028/1029".into())
        );
        assert_eq!(ok("bytes=-2000"), (0, 1029, "bytes 0-1028/1029".into()));
        assert_eq!(ok("bytes=-0"), (0, 1029, "bytes 0-1028/1029".into()));
        assert_eq!(ok("Bytes= 0-9 "), (0, 10, "bytes 0-9/1029".into()));
        assert_eq!(byte_range(None, 1029).unwrap(), None);
        let err = |h: &str, size| {
            let e = byte_range(Some(h), size).unwrap_err();
            (e.status, e.text())
        };
        assert_eq!(
            err("bytes=2000-3000", 1029),
            (416, "Invalid start position in Range header. Start position MUST be in the inclusive range [0, 1028].".into())
        );
        assert_eq!(
            err("bytes=5-2", 1029),
            (416, "Invalid Range header.".into())
        );
        assert_eq!(
            err("items=0-1", 1029),
            (416, "Invalid Range header.".into())
        );
        assert_eq!(
            err("bytes=abc", 1029),
            (416, "Invalid Range header.".into())
        );
        assert_eq!(err("bytes=0-1,5-6", 1029).0, 400);
        assert!(err("bytes=0-9", 0).1.ends_with("[0, -1]."));
    }

    #[test]
    fn the_sandbox_token_guards_the_data() {
        let s = state();
        s.lock().unwrap().token = Some("tok".into());
        let store = Store::new(100, None);
        let id = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &store, &id, OCT, b"abc").status, 401);
        assert_eq!(get(&s, &store, &id, None).0.status, 401);
        assert_eq!(s.lock().unwrap().get(&id).unwrap().status, "queued");
        let req = Request::new("PUT", &format!("/v2/images/{id}/file"))
            .header("X-Auth-Token", "tok")
            .header("Content-Type", "application/octet-stream");
        let r = upload(&s, &store, &req, &id, &mut &b"abc"[..]);
        assert_eq!(r.status, 204);
        assert!(r.get_header("x-openstack-request-id").is_some());
    }

    #[test]
    fn format_rules() {
        let mut img = Image::new_queued("x".into(), None, "t");
        img.container_format = Some("bare".into());
        let mut qcow = b"QFI\xfb".to_vec();
        qcow.resize(32, 0);
        qcow[31] = 7;
        for (disk, head, size, want) in [
            ("raw", &b"abc"[..], 3, Ok(Some(3))),
            ("raw", &b""[..], 0, Ok(None)),
            ("ami", &b"abc"[..], 3, Ok(None)),
            ("qcow2", &qcow[..], 32, Ok(Some(7))),
            ("raw", &qcow[..], 32, Ok(Some(32))),
            (
                "vmdk",
                &b"abc"[..],
                3,
                Err("Image disk_format vmdk does not match stream data raw".to_string()),
            ),
        ] {
            img.disk_format = Some(disk.into());
            assert_eq!(virtual_size(&img, head, size), want, "{disk}");
        }
        img.container_format = Some("ovf".into());
        assert_eq!(virtual_size(&img, b"abc", 3), Ok(None));
    }

    #[test]
    fn file_targets() {
        assert_eq!(file_target(&format!("/v2/images/{SEED}/file")), Some(SEED));
        assert_eq!(file_target("/v2.18/images/x/file?a=1"), Some("x"));
        assert_eq!(file_target("/v2.99/images/x/file"), None);
        assert_eq!(file_target("/v2/images/x/file/"), None);
        assert_eq!(file_target("/v2/images//file"), None);
        assert_eq!(file_target("/v2/images/x"), None);
    }

    /// A request through the router (create, show, actions, delete).
    fn call(s: &Mutex<State>, store: &Store, req: &Request) -> Response {
        let mut st = s.lock().unwrap();
        let r = crate::router::handle(&mut st, req);
        store.prune(&st.images);
        r
    }

    fn create(s: &Mutex<State>, store: &Store, body: &str) -> String {
        let r = call(s, store, &Request::new("POST", "/v2/images").body(body));
        r.body_json()["id"].as_str().unwrap().to_string()
    }

    fn show(s: &Mutex<State>, store: &Store, id: &str) -> serde_json::Value {
        call(s, store, &Request::new("GET", &format!("/v2/images/{id}"))).body_json()
    }

    fn msg(r: &Response) -> String {
        crate::testutil::message(r)
    }

    // From main's first data module: the same bytes through the router,
    // with the digests Glance 33 answered for them.
    #[test]
    fn upload_then_download_through_the_router() {
        let s = state();
        let store = Store::new(1 << 20, None);
        let id = create(
            &s,
            &store,
            r#"{"name": "up", "disk_format": "raw", "container_format": "bare"}"#,
        );
        assert_eq!(get(&s, &store, &id, None).0.status, 204);
        let data = b"hello world, this is data";
        let r = put(&s, &store, &id, OCT, data);
        assert_eq!(r.status, 204, "{}", r.body_text());
        let v = show(&s, &store, &id);
        assert_eq!(v["status"], "active");
        assert_eq!(v["size"], 25);
        assert_eq!(v["virtual_size"], 25);
        assert_eq!(v["checksum"], "92cda3bcff707bf446092b6d0638b4e2");
        assert_eq!(v["os_hash_algo"], "sha512");
        assert_eq!(v["os_hash_value"], "0c65717c05d7d6a897dd640caf27f6f761cd0c313f6ea63e37306bd69322903cb79448e9c0e03281c9f8be83b66a44f78966b7e1a14914169bc8035deedc0d98");
        assert_eq!(v["stores"], "fs");
        let (r, bytes) = get(&s, &store, &id, None);
        assert_eq!(r.status, 200);
        assert_eq!(bytes, data);
        assert_eq!(
            r.get_header("Content-MD5"),
            Some("92cda3bcff707bf446092b6d0638b4e2")
        );
        assert_eq!(
            r.get_header("Content-Type"),
            Some("application/octet-stream")
        );
        let r = put(&s, &store, &id, OCT, data);
        assert_eq!(
            (r.status, msg(&r)),
            (
                409,
                "Image status transition from active to saving is not allowed<br /><br />\n\n\n"
                    .into()
            )
        );
        // deactivated: admins may still download, members may not
        let action = |a: &str| {
            call(
                &s,
                &store,
                &Request::new("POST", &format!("/v2/images/{id}/actions/{a}")),
            )
            .status
        };
        assert_eq!(action("deactivate"), 204);
        assert_eq!(get(&s, &store, &id, None).0.status, 200);
        let req = Request::new("GET", &format!("/v2/images/{id}/file"))
            .header("Accept", "application/json")
            .header("X-Roles", "reader,member");
        let r = download(&s.lock().unwrap(), &store, &req, &id).response;
        assert_eq!(
            (r.status, msg(&r)),
            (403, "The requested image has been deactivated. Image data download is forbidden.<br /><br />\n\n\n".into())
        );
        assert_eq!(action("reactivate"), 204);
        // deleting the image drops its data
        let r = call(
            &s,
            &store,
            &Request::new("DELETE", &format!("/v2/images/{id}")),
        );
        assert_eq!(r.status, 204);
        assert_eq!(store.held(), 0);
        assert_eq!(store.size(&id), None);
    }

    // From main's first data module: each refusal's exact text.
    #[test]
    fn upload_errors_word_for_word() {
        let s = state();
        let store = Store::new(1 << 20, None);
        let id = create(&s, &store, r#"{"name": "up", "disk_format": "raw"}"#);
        let r = put(&s, &store, &id, Some("application/json"), b"x");
        assert_eq!(
            (r.status, msg(&r)),
            (415, "The request media type application/json is not supported by this server.\n<br /><br />\nInvalid content type application/json".into())
        );
        let r = put(&s, &store, &id, None, b"x");
        assert_eq!(
            msg(&r),
            "The request media type ${CONTENT_TYPE} is not supported by this server.\n<br /><br />\nInvalid content type None"
        );
        let r = put(&s, &store, "nope", OCT, b"x");
        assert_eq!(
            (r.status, msg(&r)),
            (404, "No image found with ID nope<br /><br />\n\n\n".into())
        );
        let r = put(
            &s,
            &store,
            &id,
            Some("application/octet-stream; charset=x"),
            b"x",
        );
        assert_eq!(
            (r.status, msg(&r)),
            (
                400,
                "Property container_format must be set prior to saving data.<br /><br />\n\n\n"
                    .into()
            )
        );
        let bare = create(&s, &store, r#"{"name": "none"}"#);
        let r = put(&s, &store, &bare, OCT, b"x");
        assert_eq!(
            msg(&r),
            "Properties disk_format, container_format must be set prior to saving data.<br /><br />\n\n\n"
        );
        let q = create(
            &s,
            &store,
            r#"{"name": "q", "disk_format": "qcow2", "container_format": "bare"}"#,
        );
        let r = put(&s, &store, &q, OCT, b"abc");
        assert_eq!(
            (r.status, msg(&r)),
            (415, "The request media type application/octet-stream is not supported by this server.\n<br /><br />\nImage disk_format qcow2 does not match stream data raw".into())
        );
        assert_eq!(show(&s, &store, &q)["status"], "queued");
        // a real qcow2 header: the virtual size comes from it
        let mut qcow = b"QFI\xfb\0\0\0\x03".to_vec();
        qcow.resize(24, 0);
        qcow.extend_from_slice(&(1u64 << 30).to_be_bytes());
        qcow.resize(512, 0);
        assert_eq!(put(&s, &store, &q, OCT, &qcow).status, 204);
        let v = show(&s, &store, &q);
        assert_eq!(
            (v["size"].clone(), v["virtual_size"].clone()),
            (512.into(), (1i64 << 30).into())
        );
        // empty data: active, size 0, no virtual size
        let e = create(
            &s,
            &store,
            r#"{"name": "e", "disk_format": "raw", "container_format": "bare"}"#,
        );
        assert_eq!(put(&s, &store, &e, OCT, b"").status, 204);
        let v = show(&s, &store, &e);
        assert_eq!(v["size"], 0);
        assert_eq!(v["virtual_size"], serde_json::Value::Null);
        assert_eq!(v["checksum"], "d41d8cd98f00b204e9800998ecf8427e");
        // other methods
        let req = Request::new("POST", &format!("/v2/images/{e}/file"));
        let r = download(&s.lock().unwrap(), &store, &req, &e).response;
        assert_eq!((r.status, r.get_header("Allow")), (405, Some("GET, PUT")));
        let req = Request::new("OPTIONS", &format!("/v2/images/{e}/file"));
        let d = download(&s.lock().unwrap(), &store, &req, &e);
        assert_eq!((d.response.status, d.body.is_none()), (200, true));
        // a reader may not upload
        let id2 = create(
            &s,
            &store,
            r#"{"name": "r", "disk_format": "raw", "container_format": "bare"}"#,
        );
        let req = Request::new("PUT", &format!("/v2/images/{id2}/file"))
            .header("Content-Type", "application/octet-stream")
            .header("X-Roles", "reader")
            .header("Accept", "application/json");
        let r = upload(&s, &store, &req, &id2, &mut &b"x"[..]);
        assert_eq!(
            (r.status, msg(&r)),
            (
                403,
                "You are not authorized to complete upload_image action.<br /><br />\n\n\n".into()
            )
        );
    }

    // The merge's seam: image data authenticates like every other route,
    // so with --require-auth only a token of the Keystone emulation passes,
    // and the caller is the token's project (demo), not the X-Roles header.
    #[test]
    fn require_auth_guards_the_data_with_keystone_tokens() {
        let s = state();
        let store = Store::new(1 << 20, None);
        s.lock().unwrap().keystone.require_auth = true;
        let login = Request::new("POST", "/v3/auth/tokens")
            .header("Content-Type", "application/json")
            .body(
                r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "demopass"}}}, "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}"#,
            );
        let r = call(&s, &store, &login);
        assert_eq!(r.status, 201, "{}", r.body_text());
        let token = r.get_header("X-Subject-Token").unwrap().to_string();
        let id = queued(&s, Some("raw"), Some("bare"));
        let put_with = |tok: Option<&str>, roles: Option<&str>| {
            let mut req = Request::new("PUT", &format!("/v2/images/{id}/file"))
                .header("Content-Type", "application/octet-stream");
            if let Some(t) = tok {
                req = req.header("X-Auth-Token", t);
            }
            if let Some(r) = roles {
                req = req.header("X-Roles", r);
            }
            upload(&s, &store, &req, &id, &mut &b"data"[..])
        };
        assert_eq!(put_with(None, None).status, 401);
        assert_eq!(put_with(Some("made-up"), Some("admin")).status, 401);
        assert_eq!(store.held(), 0);
        // A reader's header cannot take away the token's member role.
        assert_eq!(put_with(Some(&token), Some("reader")).status, 204);
        let req = Request::new("GET", &format!("/v2/images/{id}/file"));
        let r = download(&s.lock().unwrap(), &store, &req, &id).response;
        assert_eq!(r.status, 401);
        let req = req.header("X-Auth-Token", &token);
        let d = download(&s.lock().unwrap(), &store, &req, &id);
        assert_eq!(d.response.status, 200);
    }

    // Restarted with a smaller --max-image-size than the data on disk: the
    // data is still served, every upload is refused, and the server can tell.
    #[test]
    fn data_on_disk_over_a_smaller_cap_refuses_uploads() {
        let dir = std::env::temp_dir().join(format!("ims-data-cap-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let state_file = dir.join("state.json");
        let s = state();
        let store = Store::new(100, Some(&state_file));
        let id = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &store, &id, OCT, b"0123456789").status, 204);
        let small = Store::new(4, Some(&state_file));
        small.load(&s.lock().unwrap().images);
        assert!(small.held() > small.cap());
        assert_eq!(get(&s, &small, &id, None).1, b"0123456789");
        let other = queued(&s, Some("raw"), Some("bare"));
        assert_eq!(put(&s, &small, &other, OCT, b"x").status, 413);
        fs::remove_dir_all(dir).unwrap();
    }
}
