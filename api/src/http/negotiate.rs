//! The `Accept` header: which of our two response media types the client
//! prefers (RFC 9110 §12.5.1: the most specific matching range gives a type
//! its quality; `q=0` means "not acceptable").

use actix_web::{HttpRequest, http::header::ACCEPT};

use super::ResponseFormat;

/// The response format the client's `Accept` header asks for, or `None` when
/// it accepts neither `application/graphql-response+json` nor
/// `application/json` (the caller answers 406).
///
/// - No `Accept` header (or one with no entry that parses), or one that
///   names neither type and matches them only through `*/*` or
///   `application/*`: `application/json`. Such a client (curl, a plain
///   `fetch`, an older GraphQL client) predates
///   `application/graphql-response+json`; the draft's legacy-client rules
///   and graphql-http's audit (47DE, 80D8) expect JSON for it.
/// - Both named at equal quality: `application/graphql-response+json`,
///   the type the draft prefers.
/// - A `charset` parameter other than UTF-8 makes a range not match.
pub(crate) fn response_format(req: &HttpRequest) -> Option<ResponseFormat> {
    let ranges = media_ranges(req);
    if ranges.is_empty() {
        return Some(ResponseFormat::Json);
    }
    let preferred = quality(&ranges, "application", "graphql-response+json");
    let legacy = quality(&ranges, "application", "json");
    let names_either = ranges
        .iter()
        .any(|r| r.type_ == "application" && matches!(r.subtype.as_str(), "graphql-response+json" | "json"));
    if preferred == 0 && legacy == 0 {
        None
    } else if !names_either {
        Some(ResponseFormat::Json)
    } else if preferred >= legacy {
        Some(ResponseFormat::GraphqlResponseJson)
    } else {
        Some(ResponseFormat::Json)
    }
}

/// Whether the client accepts `text/html` itself (not just through `*/*`):
/// that is a browser navigating to the endpoint.
pub(crate) fn accepts_html(req: &HttpRequest) -> bool {
    media_ranges(req)
        .iter()
        .any(|range| range.type_ == "text" && range.subtype == "html" && range.quality > 0)
}

/// One entry of an `Accept` header, lowercased.
#[derive(Debug, PartialEq)]
struct MediaRange {
    type_: String,
    subtype: String,
    /// q-value in thousandths, 0..=1000, so that qualities compare exactly.
    quality: u16,
    /// False when the range names a charset other than UTF-8.
    utf8: bool,
}

/// Every entry of every `Accept` header; entries that do not parse are
/// skipped, as if the client had not sent them.
fn media_ranges(req: &HttpRequest) -> Vec<MediaRange> {
    req.headers()
        .get_all(ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(parse_media_range)
        .collect()
}

fn parse_media_range(entry: &str) -> Option<MediaRange> {
    let mut parts = entry.split(';');
    let (type_, subtype) = parts.next()?.trim().split_once('/')?;
    let (type_, subtype) = (type_.trim(), subtype.trim());
    if type_.is_empty() || subtype.is_empty() || (type_ == "*" && subtype != "*") {
        return None;
    }
    let mut range = MediaRange {
        type_: type_.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        quality: 1000,
        utf8: true,
    };
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" => range.quality = parse_quality(value)?,
            "charset" => range.utf8 = value.eq_ignore_ascii_case("utf-8"),
            _ => {}
        }
    }
    Some(range)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, as
/// thousandths.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The quality the ranges give `type_/subtype`: that of the most specific
/// range that matches it, 0 when none does.
fn quality(ranges: &[MediaRange], type_: &str, subtype: &str) -> u16 {
    ranges
        .iter()
        .filter_map(|range| {
            let specificity = match (range.type_.as_str(), range.subtype.as_str()) {
                (t, s) if t == type_ && s == subtype => 3,
                (t, "*") if t == type_ => 2,
                ("*", "*") => 1,
                _ => return None,
            };
            Some((specificity, range))
        })
        // Among equally specific ranges the last wins; a sender that lists a
        // type twice gets no guarantee either way.
        .max_by_key(|(specificity, _)| *specificity)
        .map_or(0, |(_, range)| if range.utf8 { range.quality } else { 0 })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn format_for(accept: &str) -> Option<ResponseFormat> {
        response_format(
            &TestRequest::default()
                .insert_header((ACCEPT, accept))
                .to_http_request(),
        )
    }

    #[test]
    fn a_missing_accept_header_gets_application_json() {
        let req = TestRequest::default().to_http_request();
        assert_eq!(response_format(&req), Some(ResponseFormat::Json));
    }

    #[test]
    fn the_recommended_client_header_gets_graphql_response_json() {
        assert_eq!(
            format_for("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8"),
            Some(ResponseFormat::GraphqlResponseJson)
        );
    }

    #[test]
    fn q_values_decide_between_the_two_types() {
        assert_eq!(
            format_for("application/graphql-response+json;q=0.5, application/json"),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            format_for("application/json;q=0.9, application/graphql-response+json"),
            Some(ResponseFormat::GraphqlResponseJson)
        );
    }

    #[test]
    fn wildcards_alone_get_application_json_and_a_named_type_decides_otherwise() {
        assert_eq!(format_for("*/*"), Some(ResponseFormat::Json));
        assert_eq!(format_for("application/*"), Some(ResponseFormat::Json));
        assert_eq!(
            format_for("application/graphql-response+json, */*;q=0.5"),
            Some(ResponseFormat::GraphqlResponseJson)
        );
        assert_eq!(
            format_for("application/graphql-response+json;q=0, */*"),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            format_for("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Some(ResponseFormat::Json)
        );
    }

    #[test]
    fn accepting_neither_type_is_not_acceptable() {
        assert_eq!(format_for("text/html"), None);
        assert_eq!(format_for("application/json;q=0"), None);
        assert_eq!(format_for("application/json; charset=iso-8859-1"), None);
    }

    #[test]
    fn malformed_entries_are_skipped() {
        assert_eq!(format_for("application/json;q=2, text/html"), None);
        assert_eq!(
            format_for("garbage, application/json"),
            Some(ResponseFormat::Json)
        );
        assert_eq!(format_for("garbage"), Some(ResponseFormat::Json));
    }

    #[test]
    fn quality_values_parse_per_the_grammar() {
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.000"), Some(1000));
        assert_eq!(parse_quality("0.5"), Some(500));
        assert_eq!(parse_quality("0.125"), Some(125));
        assert_eq!(parse_quality("0"), Some(0));
        assert_eq!(parse_quality("1.5"), None);
        assert_eq!(parse_quality("0.1234"), None);
        assert_eq!(parse_quality("-0"), None);
    }

    #[test]
    fn only_an_explicit_text_html_counts_as_a_browser() {
        let req = |accept: &str| {
            TestRequest::default()
                .insert_header((ACCEPT, accept))
                .to_http_request()
        };
        assert!(accepts_html(&req("text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(!accepts_html(&req("*/*")));
        assert!(!accepts_html(&req("text/html;q=0")));
    }
}
