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

/// `name` as a whole number with its unit, or `default`: `7d`, `12h`,
/// `30m`, `45s` (days, hours, minutes, seconds).
///
/// # Errors
/// [`EnvError`] when the value is not of that form (a bare number is
/// refused: its unit would be a guess).
pub fn duration(name: &'static str, default: Duration) -> Result<Duration, EnvError> {
    match var(name) {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).map_err(|reason| EnvError { name, reason }),
    }
}

/// `7d`, `12h`, `30m`, `45s`: [`parse_period`] with its unit required,
/// written right after the number.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let expected =
        || format!("{raw:?} is not a duration: write a whole number and a unit, e.g. 7d, 12h, 30m, 45s");
    if !raw.ends_with(|c: char| c.is_ascii_alphabetic()) || raw.contains(char::is_whitespace) {
        return Err(expected());
    }
    parse_period(raw).ok_or_else(expected)
}

/// `90s`, `15m`, `1h`, `1d`: a whole number and a unit (`s`, `m`, `h`,
/// `d`); a bare number is seconds. The one reader of periods for every
/// setting (rate limits, retention).
#[must_use]
pub fn parse_period(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(unit).map(Duration::from_secs)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_need_a_whole_number_and_a_unit() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration(" 12h "), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "1.5d",
            "-1d",
            "+1d",
            "7 d",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} is refused");
        }
    }
}
