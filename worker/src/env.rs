//! Reading environment variables the same way in both binaries: an unset
//! or blank variable takes its documented default, anything else must
//! parse, and an error names the variable.
use std::time::Duration;

/// A variable that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{name} is invalid: {reason}")]
pub struct EnvError {
    pub name: &'static str,
    pub reason: String,
}

/// `url` with the password of its userinfo (`scheme://user:password@host`)
/// replaced by `***`, for logs and `Debug` output.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// Whether `APP_ENV` says production (`production` or `prod`).
#[must_use]
pub fn is_production() -> bool {
    matches!(
        var("APP_ENV").map(|v| v.to_ascii_lowercase()).as_deref(),
        Some("production" | "prod")
    )
}

/// The value of `name`, unless unset or blank.
#[must_use]
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `name` parsed as `T`, or `default` when unset.
///
/// # Errors
/// [`EnvError`] when the value does not parse.
pub fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, EnvError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| EnvError {
            name,
            reason: e.to_string(),
        }),
    }
}

/// `name` as a boolean (`1/true/yes/on`, `0/false/no/off`), or `default`.
///
/// # Errors
/// [`EnvError`] for any other value.
pub fn flag(name: &'static str, default: bool) -> Result<bool, EnvError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(EnvError {
            name,
            reason: format!("{v:?} is not true or false"),
        }),
    }
}

/// `name` in milliseconds, or `default_ms`.
///
/// # Errors
/// [`EnvError`] when the value is not a whole number.
pub fn millis(name: &'static str, default_ms: u64) -> Result<Duration, EnvError> {
    parsed(name, default_ms).map(Duration::from_millis)
}

/// `name` in seconds, or `default_secs`.
///
/// # Errors
/// [`EnvError`] when the value is not a whole number.
pub fn secs(name: &'static str, default_secs: u64) -> Result<Duration, EnvError> {
    parsed(name, default_secs).map(Duration::from_secs)
}

/// The SQLite file under `DATA_DIR` unless `DATABASE_URL` names a database.
#[must_use]
pub fn database_url(data_dir: &std::path::Path) -> String {
    var("DATABASE_URL").unwrap_or_else(|| entity::db::sqlite_url(&data_dir.join("storefront.db")))
}

/// `DATA_DIR`, default `./var`.
#[must_use]
pub fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./var".into()))
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://shop:s3cret@db:5432/shop?sslmode=require"),
            "postgres://shop:***@db:5432/shop?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("smtps://mailer@smtp.example:465"),
            "smtps://mailer@smtp.example:465"
        );
        assert_eq!(
            redact_url("sqlite://var/storefront.db?mode=rwc"),
            "sqlite://var/storefront.db?mode=rwc"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
