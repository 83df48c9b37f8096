//! Altitudes: infinite-precision decimal strings that order the callback list.
//!
//! `"385123.9000"` and `"385123.9"` are the same altitude; `"42"` is below `"385000"`.
//! Comparison is numeric, as `RtlCompareAltitudes` does it, never lexicographic.

use std::cmp::Ordering;
use std::fmt;

/// The altitude of legacy `CmRegisterCallback` registrations (`CmLegacyAltitude`).
pub const LEGACY_ALTITUDE: &str = "425000";

/// A parsed altitude.
#[derive(Clone, Eq)]
pub struct Altitude {
    text: String,
    /// Integer digits without leading zeros.
    int: String,
    /// Fraction digits without trailing zeros.
    frac: String,
}

/// An altitude string that is not a non-negative decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid altitude {text:?}: expected decimal digits with an optional fraction, like \"385000\" or \"385123.9\""
)]
pub struct AltitudeError {
    /// The rejected text.
    pub text: String,
}

impl Altitude {
    /// Parses a decimal altitude string.
    pub fn parse(text: &str) -> Result<Self, AltitudeError> {
        let err = || AltitudeError { text: text.to_owned() };
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (text.contains('.') && frac.is_empty()) {
            return Err(err());
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        Ok(Self { text: text.to_owned(), int: int.to_owned(), frac: frac.to_owned() })
    }

    /// The altitude of legacy registrations, `425000`.
    pub fn legacy() -> Self {
        Self::parse(LEGACY_ALTITUDE).expect("the legacy altitude is a valid decimal")
    }

    /// The text as it was registered.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Ord for Altitude {
    fn cmp(&self, other: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

impl PartialOrd for Altitude {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Altitude {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl fmt::Debug for Altitude {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Altitude({})", self.text)
    }
}

impl fmt::Display for Altitude {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Altitude {
        Altitude::parse(s).unwrap()
    }

    #[test]
    fn numeric_order() {
        assert!(a("385000") > a("42"));
        assert!(a("385123.9") > a("385123.10"));
        assert!(a("385123.9") < a("385124"));
        assert_eq!(a("385123.9000"), a("385123.9"));
        assert_eq!(a("000380000"), a("380000"));
        assert!(a("360000000000000000000") > a("425000"));
        assert!(a("0.5") > a("0"));
    }

    #[test]
    fn rejects_non_decimals() {
        for bad in ["", ".5", "5.", "1.2.3", "-1", "12a", " 1", "1e5"] {
            assert!(Altitude::parse(bad).is_err(), "{bad:?}");
        }
    }
}
