//! Where S3 credentials come from, in the AWS tools' order: the
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`)
//! variables, then the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`
//! or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`), then — only
//! when asked with `[cache] imds = true` — the EC2 instance metadata service.
//!
//! The decision a reader may question: the metadata address
//! (169.254.169.254) is never contacted by default. On a laptop or a CI
//! runner outside EC2 it does not answer, so probing it costs seconds on
//! every run and sends a request somewhere the user never named; a missing
//! credential is instead reported once with how to set one.

use rusty_s3::Credentials;
use std::path::PathBuf;

/// What to try when the environment and the credentials file have nothing.
#[derive(Clone, Debug, Default)]
pub struct AuthOptions {
    /// Ask the EC2 instance metadata service (IMDSv2).
    pub imds: bool,
}

/// How to set credentials, for the message when none are found.
pub const HOW_TO_SET: &str = "no S3 credentials found: set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or put them in \
     ~/.aws/credentials (profile from AWS_PROFILE, else `default`), or on EC2 set \
     `[cache] imds = true` in strata.toml to use the instance role";

/// The first credentials found, or why there are none.
pub fn resolve(opts: &AuthOptions) -> Result<Credentials, String> {
    if let Some(c) = from_env() {
        return Ok(c);
    }
    if let Some(c) = from_profile()? {
        return Ok(c);
    }
    if opts.imds {
        return from_imds();
    }
    Err(HOW_TO_SET.to_string())
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn from_env() -> Option<Credentials> {
    Some(credentials(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
    ))
}

fn credentials_file() -> Option<PathBuf> {
    var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
}

fn from_profile() -> Result<Option<Credentials>, String> {
    let Some(path) = credentials_file() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    Ok(parse_profile(&text, &profile))
}

/// The named profile of an INI credentials file, if complete.
pub fn parse_profile(text: &str, profile: &str) -> Option<Credentials> {
    let mut section = String::new();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => id = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    Some(credentials(id?, secret?, token))
}

/// IMDSv2: a session token, the instance role's name, its credentials.
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the address (as in the
/// AWS SDKs).
fn from_imds() -> Result<Credentials, String> {
    let base =
        var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
    let base = base.trim_end_matches('/');
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(std::time::Duration::from_secs(1)))
        .timeout_global(Some(std::time::Duration::from_secs(3)))
        .build()
        .new_agent();
    let fail = |what: &str, why: String| format!("instance metadata ({base}): {what}: {why}");
    let text = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str| {
        let mut r = r.map_err(|e| fail(what, crate::net::describe(&e)))?;
        if !r.status().is_success() {
            return Err(fail(what, format!("HTTP {}", r.status())));
        }
        r.body_mut()
            .read_to_string()
            .map_err(|e| fail(what, e.to_string()))
    };
    let token = text(
        agent
            .put(format!("{base}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            .send_empty(),
        "token",
    )?;
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let role = text(
        agent
            .get(&path)
            .header("x-aws-ec2-metadata-token", token.trim())
            .call(),
        "role",
    )?;
    let role = role.lines().next().unwrap_or("").trim().to_string();
    if role.is_empty() {
        return Err(fail("role", "the instance has no IAM role".into()));
    }
    let body = text(
        agent
            .get(format!("{path}{role}"))
            .header("x-aws-ec2-metadata-token", token.trim())
            .call(),
        "credentials",
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| fail("credentials", e.to_string()))?;
    let field = |k: &str| v[k].as_str().map(str::to_string);
    Ok(credentials(
        field("AccessKeyId").ok_or_else(|| fail("credentials", "no AccessKeyId".into()))?,
        field("SecretAccessKey").ok_or_else(|| fail("credentials", "no SecretAccessKey".into()))?,
        field("Token"),
    ))
}

/// rusty-s3's credentials (the secret is zeroed when dropped).
fn credentials(id: String, secret: String, token: Option<String>) -> Credentials {
    match token {
        Some(token) => Credentials::new_with_token(id, secret, token),
        None => Credentials::new(id, secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_only() {
        let ini = "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n\
                   # a comment\n[ci]\naws_access_key_id=C\naws_secret_access_key=CS\n\
                   aws_session_token = T\n";
        let d = parse_profile(ini, "default").unwrap();
        assert_eq!((d.key(), d.token()), ("D", None));
        let c = parse_profile(ini, "ci").unwrap();
        assert_eq!(c.secret(), "CS");
        assert_eq!(c.token(), Some("T"));
        assert!(parse_profile(ini, "nope").is_none());
        assert!(parse_profile("[x]\naws_access_key_id = A\n", "x").is_none());
    }
}
