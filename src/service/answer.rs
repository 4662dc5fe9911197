//! Answers made from a file (a cached one, one still downloading, or a
//! `LocalDirs` one): the status and headers a request gets (`200`, `206`,
//! `304`, `416`), and the body of the bytes it asked for.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::conditional::{self, Selection};
use crate::body::ResponseBody;
use crate::cache::read_range;
use crate::cache::Meta;

/// Files up to this size are read at once and sent with their headers in
/// one write.
const SMALL_FILE: u64 = 64 * 1024;

/// The body of a response from a complete file: the bytes `file_answer`
/// chose, read at once when small, none for HEAD.
pub(super) fn complete_file_body<B>(
    req: &Request<B>,
    file: std::fs::File,
    range: Option<(u64, Option<u64>)>,
) -> std::io::Result<ResponseBody> {
    Ok(match range {
        Some((start, Some(end))) if req.method() != Method::HEAD => {
            if end - start <= SMALL_FILE {
                ResponseBody::full(read_range(&file, start, end)?)
            } else {
                ResponseBody::file(Arc::new(file), start, end)
            }
        }
        _ => ResponseBody::empty(),
    })
}

/// The `Content-Type` of cached files: upstream's is not kept (spec §2.8).
pub(super) const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// The status and headers answering `req` from a file of `total` bytes
/// (`None`: arriving chunked, length unknown), and the bytes `[start, end)`
/// to send when the answer has a body (`end` unknown while chunked).
pub(super) fn file_answer<B>(
    req: &Request<B>,
    total: Option<u64>,
    meta: &Meta,
    content_type: HeaderValue,
) -> (http::response::Builder, Option<(u64, Option<u64>)>) {
    let mut builder = Response::builder();
    if let Some((lm, _)) = &meta.last_modified {
        builder = builder.header(header::LAST_MODIFIED, lm.clone());
    }
    if let Some(etag) = &meta.etag {
        builder = builder.header(header::ETAG, etag.clone());
    }
    let with_type = |builder: http::response::Builder| builder.header(header::CONTENT_TYPE, content_type);
    let Some(total) = total else {
        return (with_type(builder.status(StatusCode::OK)), Some((0, None)));
    };
    let with_body = |builder: http::response::Builder, start: u64, end: u64| {
        with_type(builder)
            .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))
            .header(header::CONTENT_LENGTH, end - start)
    };
    match conditional::select(req.method(), req.headers(), total, meta) {
        Selection::Whole => (
            with_body(builder.status(StatusCode::OK), 0, total),
            Some((0, Some(total))),
        ),
        Selection::Part { start, end } => (
            with_body(builder.status(StatusCode::PARTIAL_CONTENT), start, end).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", end - 1),
            ),
            Some((start, Some(end))),
        ),
        Selection::NotModified => (builder.status(StatusCode::NOT_MODIFIED), None),
        Selection::Unsatisfiable => (
            builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{total}"))
                .header(header::CONTENT_LENGTH, 0),
            None,
        ),
    }
}
