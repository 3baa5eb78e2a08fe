//! The hub's read routes, parsed from the raw (still percent-encoded) path so that a
//! revision such as `refs%2Fpr%2F1` stays one segment:
//! - `GET /api/{models|datasets}/{repo}[/revision/{rev}]`: repo info with `sha`;
//! - `GET /api/{models|datasets}/{repo}/tree/{rev}[/{dir}]`: the file list;
//! - `HEAD|GET /[datasets/]{repo}/resolve/{rev}/{path}`: a file, with the hub's headers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::percent_decode_str;
use seedbank_protocol::hf::is_lfs_etag;
use seedbank_protocol::{HfRepo, HfRepoType};

use super::body::file_body;
use super::errors::HfError;
use super::etag::served_etag;
use super::listing::{repo_info, tree_page};
use super::range::ByteRange;
use super::GatewayState;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Info {
        repo: HfRepo,
        revision: Option<String>,
    },
    Tree {
        repo: HfRepo,
        revision: String,
        dir: String,
        recursive: bool,
        cursor: usize,
    },
    File {
        repo: HfRepo,
        revision: String,
        path: String,
    },
}

/// Every request the gateway gets.
pub async fn handle(
    State(state): State<GatewayState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "the gateway is read-only").into_response();
    }
    let route = match parse(uri.path(), uri.query().unwrap_or("")) {
        Ok(route) => route,
        Err(e) => return e.into_response(),
    };
    let result = match route {
        Route::Info { repo, revision } => info(&state, &repo, revision.as_deref()).await,
        Route::Tree {
            repo,
            revision,
            dir,
            recursive,
            cursor,
        } => {
            let listing = Listing {
                dir: &dir,
                recursive,
                cursor,
            };
            tree(&state, &repo, &revision, listing, &uri, &headers).await
        }
        Route::File {
            repo,
            revision,
            path,
        } => {
            file(
                &state,
                &repo,
                &revision,
                &path,
                method == Method::HEAD,
                &headers,
            )
            .await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn info(
    state: &GatewayState,
    repo: &HfRepo,
    revision: Option<&str>,
) -> Result<Response, HfError> {
    let target = state.resolver.resolve(repo, revision).await?;
    let labels = state.node.names().labels_for(target.root).ok().flatten();
    Ok(Json(repo_info(repo, &target, labels.as_ref())).into_response())
}

/// Which page of which folder a tree request asks for.
struct Listing<'a> {
    dir: &'a str,
    recursive: bool,
    cursor: usize,
}

async fn tree(
    state: &GatewayState,
    repo: &HfRepo,
    revision: &str,
    listing: Listing<'_>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, HfError> {
    let target = state.resolver.resolve(repo, Some(revision)).await?;
    let dir = listing.dir;
    // A hub ETag is listed only once this node hashed the file's bytes and found it.
    let book = state.node.hf().hub_hashes();
    let files = &target.manifest.files;
    let vouched = |index: usize, etag: &str| {
        book.get(files[index].hash)
            .ok()
            .flatten()
            .is_some_and(|hashes| hashes.names(etag))
    };
    let page = tree_page(
        &target.manifest,
        dir,
        listing.recursive,
        listing.cursor,
        vouched,
    );
    if !page.found && !dir.is_empty() {
        return Err(HfError::EntryNotFound {
            message: format!("{repo} has no folder {dir:?} at {}", target.commit),
            commit: target.commit,
        });
    }
    let mut response = Json(page.entries).into_response();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let (Some(next), Some(host)) = (page.next, host) {
        let link = format!(
            "<http://{host}{}?recursive={}&cursor={next}>; rel=\"next\"",
            uri.path(),
            listing.recursive
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

async fn file(
    state: &GatewayState,
    repo: &HfRepo,
    revision: &str,
    path: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, HfError> {
    let target = state.resolver.resolve(repo, Some(revision)).await?;
    let Some(index) = target.manifest.file_index(path) else {
        return Err(HfError::EntryNotFound {
            message: format!("{repo} has no file {path:?} at {}", target.commit),
            commit: target.commit,
        });
    };
    let entry = &target.manifest.files[index];
    let etag = served_etag(state, &target, index).await?;
    let size = entry.size;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(text) => Some(ByteRange::parse(text, size)?),
        None => None,
    };
    let (status, start, end) = match range {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range.start, range.end),
        None => (StatusCode::OK, 0, size),
    };
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        let store = state.node.library().transfer_store();
        let complete = size == 0 || store.size(entry.hash).await.ok().flatten().is_some();
        // Held while the body streams: a fetch only readers asked for ends once none
        // is left.
        let reader = state.node.fetcher().reader_lease(target.root);
        if !complete {
            state
                .node
                .fetcher()
                .fetch_files_in_background(target.root, &[path])
                .await
                .map_err(|e| HfError::Upstream(format!("cannot fetch {path:?}: {e}")))?;
        }
        state.node.library().note_used(target.root);
        Response::new(file_body(store, entry.hash, size, start..end, reader))
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let quoted = format!("\"{etag}\"");
    put(headers, header::ETAG, &quoted);
    put(headers, header::CONTENT_LENGTH, &(end - start).to_string());
    put(headers, header::ACCEPT_RANGES, "bytes");
    put(headers, header::CONTENT_TYPE, "application/octet-stream");
    put(headers, "x-repo-commit", &target.commit);
    put(headers, "x-linked-size", &size.to_string());
    if is_lfs_etag(&etag) {
        put(headers, "x-linked-etag", &quoted);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let last = end.saturating_sub(1);
        put(
            headers,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{last}/{size}"),
        );
    }
    Ok(response)
}

fn put<K: axum::http::header::IntoHeaderName>(headers: &mut HeaderMap, name: K, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Parses a request path (percent-encoded, as sent) and query.
fn parse(path: &str, query: &str) -> Result<Route, HfError> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let not_served = || HfError::BadRequest(format!("the gateway does not serve {path}"));
    let words: Vec<&str> = segments.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["api", plural, rest @ ..] => {
            let repo_type = HfRepoType::from_plural(plural).ok_or_else(not_served)?;
            let (repo, rest) = split_repo(repo_type, rest)?;
            match rest {
                [] => Ok(Route::Info {
                    repo,
                    revision: None,
                }),
                ["revision", revision] => Ok(Route::Info {
                    repo,
                    revision: Some((*revision).to_owned()),
                }),
                ["tree", revision, dir @ ..] => Ok(Route::Tree {
                    repo,
                    revision: (*revision).to_owned(),
                    dir: dir.join("/").trim_end_matches('/').to_owned(),
                    recursive: query.split('&').any(|pair| {
                        pair.eq_ignore_ascii_case("recursive=true") || pair == "recursive=1"
                    }),
                    cursor: query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("cursor="))
                        .map(|text| {
                            text.parse().map_err(|_| {
                                HfError::BadRequest(format!("cursor {text:?} is not a page start"))
                            })
                        })
                        .transpose()?
                        .unwrap_or(0),
                }),
                _ => Err(not_served()),
            }
        }
        ["datasets", rest @ ..] => file_route(HfRepoType::Dataset, rest).ok_or_else(not_served)?,
        rest => file_route(HfRepoType::Model, rest).ok_or_else(not_served)?,
    }
}

/// `{repo}/resolve/{rev}/{path…}`.
fn file_route(repo_type: HfRepoType, words: &[&str]) -> Option<Result<Route, HfError>> {
    let at = words.iter().position(|w| *w == "resolve")?;
    let (repo_words, rest) = words.split_at(at);
    let [_, revision, path @ ..] = rest else {
        return None;
    };
    if path.is_empty() || repo_words.is_empty() || repo_words.len() > 2 {
        return None;
    }
    Some(
        HfRepo::new(repo_type, &repo_words.join("/"))
            .map_err(|e| HfError::RepoNotFound(e.to_string()))
            .map(|repo| Route::File {
                repo,
                revision: (*revision).to_owned(),
                path: path.join("/"),
            }),
    )
}

/// Splits `org/name/rest…` (or a legacy `name/rest…`) into the repo and the rest.
fn split_repo<'a, 'b>(
    repo_type: HfRepoType,
    words: &'a [&'b str],
) -> Result<(HfRepo, &'a [&'b str]), HfError> {
    let keyword = |w: &str| matches!(w, "revision" | "tree");
    let parts = match words {
        [_, next, ..] if keyword(next) => 1,
        [_] => 1,
        _ => 2,
    };
    if words.len() < parts {
        return Err(HfError::BadRequest("no repo id in the path".into()));
    }
    let repo = HfRepo::new(repo_type, &words[..parts].join("/"))
        .map_err(|e| HfError::RepoNotFound(e.to_string()))?;
    Ok((repo, &words[parts..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> HfRepo {
        HfRepo::new(HfRepoType::Model, id).unwrap()
    }

    #[test]
    fn paths_parse_as_the_client_sends_them() {
        assert_eq!(
            parse("/api/models/org/tiny", "").unwrap(),
            Route::Info {
                repo: model("org/tiny"),
                revision: None
            }
        );
        assert_eq!(
            parse("/api/models/org/tiny/revision/refs%2Fpr%2F1", "").unwrap(),
            Route::Info {
                repo: model("org/tiny"),
                revision: Some("refs/pr/1".into())
            }
        );
        assert_eq!(
            parse(
                "/api/datasets/org/set/tree/main",
                "recursive=true&expand=false&cursor=2000"
            )
            .unwrap(),
            Route::Tree {
                repo: HfRepo::new(HfRepoType::Dataset, "org/set").unwrap(),
                revision: "main".into(),
                dir: String::new(),
                recursive: true,
                cursor: 2000
            }
        );
        assert!(parse("/api/models/org/tiny/tree/main", "cursor=abc").is_err());
        assert_eq!(
            parse("/org/tiny/resolve/main/dir%20x/file.json", "").unwrap(),
            Route::File {
                repo: model("org/tiny"),
                revision: "main".into(),
                path: "dir x/file.json".into()
            }
        );
        assert_eq!(
            parse("/datasets/org/set/resolve/abc/data/train.csv", "").unwrap(),
            Route::File {
                repo: HfRepo::new(HfRepoType::Dataset, "org/set").unwrap(),
                revision: "abc".into(),
                path: "data/train.csv".into()
            }
        );
        assert_eq!(
            parse("/api/models/gpt2/revision/main", "").unwrap(),
            Route::Info {
                repo: model("gpt2"),
                revision: Some("main".into())
            }
        );
        assert!(parse("/api/spaces/org/x", "").is_err());
        assert!(parse("/v1/status", "").is_err());
        assert!(parse("/a/b/c/resolve/main/x", "").is_err());
    }
}
