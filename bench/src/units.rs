//! Parsing and printing of the units dp-bench talks in: durations on the command line
//! (`15s`, `500ms`, `2m`, `1h`, `250us`) and byte rates in reports.
//!
//! Invariants: a parsed duration is finite and at most [`MAX_DURATION_S`] seconds (one day),
//! so every deadline computed from it fits an `Instant` on every platform.

use std::time::Duration;

/// The largest duration any flag accepts, in seconds (one day).
pub const MAX_DURATION_S: u64 = 24 * 3600;

/// Parses `NUMBER[UNIT]` where UNIT is `us`, `ms`, `s` (the default), `m` or `h`.
/// The number may have a fractional part (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "duration {text:?} has no number; try `15s` or `500ms`"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?}: {number:?} is not a number"))?;
    let scale_s = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "duration {text:?}: unknown unit {other:?} (use us, ms, s, m or h)"
            ))
        }
    };
    let seconds = value * scale_s;
    if !seconds.is_finite() || seconds > MAX_DURATION_S as f64 {
        return Err(format!(
            "duration {text:?} is longer than the limit of {MAX_DURATION_S} s"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a byte count with a binary unit: `4.00 MiB`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Formats a duration given in microseconds with a unit that keeps 3-4 significant digits.
pub fn format_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} us")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.3} s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("100000h").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn formats_pick_readable_units() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(4.0 * 1024.0 * 1024.0), "4.00 MiB");
        assert_eq!(format_us(12.0), "12 us");
        assert_eq!(format_us(2_500.0), "2.50 ms");
        assert_eq!(format_us(3_000_000.0), "3.000 s");
    }
}
