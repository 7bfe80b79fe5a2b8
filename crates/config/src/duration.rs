//! Durations written as Go writes them (`30s`, `1m30s`, `1.5s`, `500ms`, `2h`), the form
//! ECAD Signatory's settings use.

use std::time::Duration;

/// Parse a positive duration: one or more `<number><unit>` with units `ms`, `s`, `m`, `h`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let expected =
        || format!("`{text}` is not a duration; write it like `30s`, `1m30s` or `500ms`");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(expected());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .ok_or_else(expected)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|ch: char| ch.is_ascii_digit() || ch == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(expected()),
        };
        let value: f64 = number.parse().map_err(|_| expected())?;
        let part = Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| expected())?;
        total = total.checked_add(part).ok_or_else(expected)?;
        rest = after;
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse(" 10s ").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn other_text_is_refused_with_an_example() {
        for bad in [
            "", "30", "s", "10 s", "1.2.3s", "-5s", "5d", "5sec", "ms5", "1e3s",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("write it like `30s`"), "{bad}: {err}");
        }
    }
}
