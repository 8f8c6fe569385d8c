//! Uploads streamed to disk: a request body (or one multipart field) is
//! written chunk by chunk into a hidden part file, counted against its limit
//! and hashed as it goes, so that memory stays flat whatever its size. The
//! part file is removed when dropped unless the handler keeps it (renames
//! it into place): a refused, broken or cut-off upload leaves nothing.
//! `POST /jars/upload` and `POST /blobs` both use it.

use super::{body, error};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A file removed when dropped, unless kept.
pub struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl PartFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the part file to `to` and keeps it there.
    pub async fn keep_as(mut self, to: &Path) -> std::io::Result<()> {
        tokio::fs::rename(&self.path, to).await?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A body on disk.
pub struct Spooled {
    pub part: PartFile,
    pub size: u64,
    /// `sha256:<hex>` of the whole body.
    pub digest: String,
    /// Its first 8 bytes (fewer if it is shorter).
    pub head: Vec<u8>,
}

/// Streams `chunks` into the new file `path` (its directory must exist),
/// at most `max` bytes: 413 naming `what` past it, with the part file
/// removed. `stream_error` answers for a chunk that fails (a body cut off
/// at `rest.server.max-content-length`, a malformed multipart body, a
/// dropped connection).
pub async fn to_file<E>(
    chunks: impl Stream<Item = Result<Bytes, E>>,
    path: PathBuf,
    max: u64,
    what: &str,
    stream_error: impl Fn(E) -> Response,
) -> Result<Spooled, Response> {
    let mut chunks = std::pin::pin!(chunks);
    let cannot = |e: std::io::Error| error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"));
    // `create_new`: never write through a file or link planted at the name.
    let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await.map_err(cannot)?;
    let part = PartFile { path, keep: false };
    let (mut size, mut head, mut hash) = (0u64, Vec::with_capacity(8), Sha256::new());
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(&stream_error)?;
        size += chunk.len() as u64;
        if size > max {
            return Err(body::too_large(max, what));
        }
        if head.len() < 8 {
            head.extend(chunk.iter().take(8 - head.len()));
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(cannot)?;
    }
    file.flush().await.map_err(cannot)?;
    drop(file);
    let digest = flowc_compiler::udf::artifact::format_digest(&hash.finalize());
    Ok(Spooled { part, size, digest, head })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flowc-spool-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn fail(e: std::io::Error) -> Response {
        error(StatusCode::BAD_REQUEST, e.to_string())
    }

    #[tokio::test]
    async fn hashes_counts_and_keeps_what_is_kept() {
        let dir = scratch();
        let s = to_file(chunks(&[b"FLOW", b"CUDF-and-more"]), dir.join(".a.part"), 100, "x", fail).await;
        let s = s.unwrap_or_else(|_| panic!("spooled"));
        assert_eq!((s.size, s.head.as_slice()), (17, &b"FLOWCUDF"[..]));
        assert_eq!(s.digest, flowc_compiler::udf::artifact::digest(b"FLOWCUDF-and-more"));
        s.part.keep_as(&dir.join("a")).await.expect("kept");
        assert_eq!(std::fs::read(dir.join("a")).expect("read"), b"FLOWCUDF-and-more");
        assert!(!dir.join(".a.part").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn over_the_limit_or_broken_leaves_nothing() {
        let dir = scratch();
        let over = to_file(chunks(&[b"12345", b"67890"]), dir.join(".b.part"), 8, "x", fail).await;
        assert_eq!(over.err().map(|r| r.status()), Some(StatusCode::PAYLOAD_TOO_LARGE));
        let broken =
            futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err(std::io::Error::other("connection reset"))]);
        let broken = to_file(broken, dir.join(".c.part"), 100, "x", fail).await;
        assert_eq!(broken.err().map(|r| r.status()), Some(StatusCode::BAD_REQUEST));
        // A dropped part file that was never kept.
        let s = to_file(chunks(&[b"x"]), dir.join(".d.part"), 100, "x", fail).await;
        drop(s);
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
