//! The one HTTP client: every byte strata moves over the network (package
//! downloads, the read-only HTTP store, S3) goes through a `ureq` agent
//! built here, so there is one TLS stack (rustls with bundled roots), one
//! proxy policy and one place where timeouts are decided.
//!
//! Proxies come from the environment: the first of `ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY` (or the lower-case forms) that is set carries
//! every request through a `CONNECT` tunnel, and `NO_PROXY` names the hosts
//! reached directly. HTTP status codes are never errors at this
//! level: callers look at the status, because a 404 is a cache miss and a
//! 412 an answer to a create-only put, not failures.
//!
//! The decision a reader may question is the short first-byte timeout for
//! stores ([`Timeouts::remote_store`]): a shared cache is an optimisation, so
//! one that does not answer within a few seconds is treated as down for the
//! rest of the run (see `store::tiered`) rather than waited on; downloads of
//! sources, which the build cannot do without, wait longer.

use std::time::Duration;

/// How long one request may wait, by phase.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP connect (and TLS/proxy setup).
    pub connect: Duration,
    /// From the request sent to the response headers (the first byte).
    pub first_byte: Duration,
    /// Longest pause while reading or writing a body (an idle timeout, so
    /// a large transfer that keeps moving is never cut).
    pub idle: Duration,
}

impl Timeouts {
    /// For a remote artifact store: a few seconds to connect and to answer.
    /// `STRATA_REMOTE_TIMEOUT` (seconds) overrides the connect and
    /// first-byte budgets, e.g. for a store across a slow link.
    pub fn remote_store() -> Timeouts {
        let answer = std::env::var("STRATA_REMOTE_TIMEOUT")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .map_or(Duration::from_secs(3), Duration::from_secs_f64);
        Timeouts {
            connect: answer,
            first_byte: answer,
            idle: Duration::from_secs(10),
        }
    }

    /// One budget for every phase (package downloads: `STRATA_FETCH_TIMEOUT`).
    pub fn uniform(d: Duration) -> Timeouts {
        Timeouts {
            connect: d,
            first_byte: d,
            idle: d,
        }
    }
}

/// An agent with strata's user agent, the environment's proxies and `t`.
pub fn agent(t: Timeouts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .timeout_resolve(Some(t.connect))
        .timeout_connect(Some(t.connect))
        .timeout_send_request(Some(t.connect))
        .timeout_recv_response(Some(t.first_byte))
        .timeout_per_read(Some(t.idle))
        .timeout_per_write(Some(t.idle))
        .build()
        .new_agent()
}

/// Whether a transport error means the server is unreachable or not
/// answering (as opposed to answering with an error): refused, reset,
/// timed out, closed without a reply, unknown host, TLS failure.
pub fn is_unreachable(e: &ureq::Error) -> bool {
    !matches!(e, ureq::Error::StatusCode(_))
}

/// A transport error in words, with the timeout named when it was one.
pub fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("no answer in time ({t} timeout)"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection without a reply".into()
        }
        other => other.to_string(),
    }
}
