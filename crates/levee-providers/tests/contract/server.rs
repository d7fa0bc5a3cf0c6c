//! A tiny in-process HTTP server for contract tests: axum on a private
//! tokio runtime, every request handed to one synchronous handler that
//! plays the vendor (checks method, path, auth and body; keeps state;
//! answers in the vendor's shapes). Records each request line so tests can
//! count calls.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lowercased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The scheme://host:port the client addressed.
    pub base: String,
}

impl Req {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Path segments after a prefix: `segments("/v2/firewalls/")`.
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }

    /// The full URL as the client wrote it (path and query, not decoded).
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            format!("{}{}", self.base, self.path)
        } else {
            format!("{}{}?{}", self.base, self.path, self.query)
        }
    }
}

/// The handler's answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(status: u16, v: serde_json::Value) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&v).unwrap(),
        }
    }

    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: vec![],
            body: vec![],
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

pub struct TestServer {
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> TestServer {
        let handler: Handler = Arc::new(handler);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                addr_tx.send(addr).unwrap();
                let base = format!("http://{addr}");
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let handler = handler.clone();
                        let log = log2.clone();
                        let base = base.clone();
                        async move {
                            let req = Req {
                                method: method.to_string(),
                                path: uri.path().to_string(),
                                query: uri.query().unwrap_or("").to_string(),
                                headers: headers
                                    .iter()
                                    .map(|(k, v)| {
                                        (
                                            k.as_str().to_string(),
                                            v.to_str().unwrap_or("").to_string(),
                                        )
                                    })
                                    .collect(),
                                body: body.to_vec(),
                                base,
                            };
                            log.lock()
                                .unwrap()
                                .push(format!("{} {}", req.method, req.path));
                            let r = handler(&req);
                            let mut resp: Response =
                                (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
                            for (k, v) in r.headers {
                                resp.headers_mut().insert(
                                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            resp
                        }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestServer {
            base: format!("http://{addr}"),
            log,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Request lines seen so far.
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fast retries for tests.
pub fn quick() -> levee_providers::HttpConfig {
    levee_providers::HttpConfig {
        timeout: std::time::Duration::from_secs(5),
        max_retries: 2,
        max_retry_wait: std::time::Duration::from_secs(2),
    }
}

/// A server that is no longer listening: connection refused.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}")
}
