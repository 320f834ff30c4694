//! Durations in config files: an integer and a unit, `500ms`, `10s`, `5m`, `1h`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Parses `<integer><unit>` with unit `ms`, `s`, `m` or `h`; zero is refused (every duration
/// in the config is a timeout that must be able to pass).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration: write a number and a unit, like `10s`"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: number too large"))?;
    let per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(format!(
                "`{text}` has no unit: write `{text}s` for seconds (units: ms, s, m, h)"
            ));
        }
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (units: ms, s, m, h)"
            ));
        }
    };
    let ms = n
        .checked_mul(per_unit)
        .ok_or_else(|| format!("`{text}`: duration too large"))?;
    if ms == 0 {
        return Err(format!("`{text}`: a duration must be greater than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// `deserialize_with` helper for a duration string.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        for bad in [
            "",
            "10",
            "s",
            "-1s",
            "+1s",
            "1.5s",
            "10 s",
            "10sec",
            "0s",
            "99999999999999999999s",
            "18446744073709551615h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
