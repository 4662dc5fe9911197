//! Answering a `LocalDirs` request (spec §2.7) from what
//! [`admin::local_dir`](crate::admin::local_dir) found:
//!
//! | found     | answer                                                         |
//! |-----------|----------------------------------------------------------------|
//! | file      | 200 / 206 / 304 / 416 as for a cached file, its own type and mtime |
//! | listing   | 200, the "Index of" page                                       |
//! | redirect  | 301 to the directory's path with its slash                     |
//! | error     | `ServeError::LocalDir`, mapped in `error`                      |
//!
//! Each answer, errors included, gets a transfer-log record named
//! `<vdir><path>`, as a cached file gets one.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::answer::{complete_file_body, file_answer};
use super::{account, page_response, Client, Outcome, ServeError};
use crate::admin::help::escape;
use crate::admin::local_dir::{self, Found, LocalDirError, LocalFile};
use crate::body::ResponseBody;
use crate::cache::{Head, Meta};
use crate::request::Reject;
use crate::state::AppState;
use crate::stats::Served;

pub async fn serve<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    name: String,
    path: String,
) -> Outcome {
    let logged = format!("{name}{path}");
    let fail = |e: LocalDirError| ServeError::LocalDir(e).at(&logged);
    let Some(root) = state.config.requests.local_dirs.get(&name).cloned() else {
        // Classification found the name in the same table.
        return Err(ServeError::Rejected(Reject::Forbidden).at(&logged));
    };
    let found = {
        let (name, path) = (name.clone(), path.clone());
        // Opening, stat'ing and listing block; a large directory for long.
        tokio::task::spawn_blocking(move || local_dir::open(&name, &root, &path))
            .await
            .unwrap_or_else(|e| Err(LocalDirError::Io(std::io::Error::other(e))))
            .map_err(fail)?
    };
    let mut response = match found {
        Found::File(file) => file_response(req, file).map_err(|e| fail(LocalDirError::Io(e)))?,
        Found::Listing(listing) => {
            let page = listing.render().map_err(fail)?;
            page_response("text/html; charset=utf-8", page, req.method())
        }
        Found::Redirect { path } => {
            let location = local_dir::location(&name, &path, req.uri().scheme().is_some());
            moved_permanently(&location, req.method())
        }
    };
    account(client, &mut response, logged, Served::Relayed);
    Ok(response)
}

/// A local file as a cached one is answered (Range, HEAD,
/// If-Modified-Since), with its own type and mtime.
fn file_response<B>(req: &Request<B>, file: LocalFile) -> std::io::Result<Response<ResponseBody>> {
    let meta = Meta::new(Head {
        last_modified: file.modified.map(httpdate::fmt_http_date),
        ..Head::default()
    });
    let content_type = HeaderValue::from_static(file.content_type);
    let (builder, range) = file_answer(req, Some(file.len), &meta, content_type);
    let body = complete_file_body(req, file.file, range)?;
    builder.body(body).map_err(std::io::Error::other)
}

/// `301` to `location` (percent-encoded, so a valid header and safe in
/// HTML), with a line of HTML for clients that do not follow it.
fn moved_permanently(location: &str, method: &Method) -> Response<ResponseBody> {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><title>301 Moved Permanently</title></head>\n\
<body><p>Moved to <a href=\"{0}\">{0}</a>.</p></body></html>\n",
        escape(location)
    );
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, location)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_LENGTH, body.len())
        .body(if method == Method::HEAD {
            ResponseBody::empty()
        } else {
            ResponseBody::full(body)
        })
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()))
}
