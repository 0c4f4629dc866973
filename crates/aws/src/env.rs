//! Reading a function's settings from its environment at cold start: each reader
//! names the variable it failed on, so a misconfigured function stops with the fix
//! in its first log line.

/// A configuration variable that is missing or invalid: the function must not start.
#[derive(thiserror::Error)]
#[error("configuration: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// `main` returns this error, and the runtime prints it with `Debug`: make that the
/// sentence a person needs, not a struct dump.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Typed reads over a variable lookup (`std::env::var` in Lambda, a map in tests).
/// Values are trimmed; a blank value counts as unset.
pub struct Env<F> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A variable the function cannot run without; `why` says what it is for.
    pub fn required(&self, name: &'static str, why: &str) -> Result<String, ConfigError> {
        self.get(name).ok_or_else(|| ConfigError {
            variable: name,
            reason: format!("is required: {why}"),
        })
    }

    /// An S3 key prefix: relative, and ending in `/` whether or not it was given with one.
    pub fn prefix(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let mut p = self.get(name).unwrap_or_else(|| default.to_owned());
        if p.starts_with('/') {
            return Err(ConfigError {
                variable: name,
                reason: format!("{p:?} must not start with '/'"),
            });
        }
        if !p.ends_with('/') {
            p.push('/');
        }
        Ok(p)
    }

    /// An integer in `min..=max`, or `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    variable: name,
                    reason: format!("{v:?} is not an integer from {min} to {max}"),
                }),
            },
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), or `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError {
                    variable: name,
                    reason: format!("{v:?} is not true or false"),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn reads_and_names_the_failing_variable() {
        let e = env(&[
            ("BUCKET", " lake "),
            ("BLANK", "  "),
            ("PREFIX", "ocsf"),
            ("ROOTED", "/ocsf"),
            ("N", "7"),
            ("BIG", "700"),
            ("YES", "TRUE"),
            ("MAYBE", "perhaps"),
        ]);
        assert_eq!(e.required("BUCKET", "x").unwrap(), "lake");
        let err = e.required("BLANK", "the lake").unwrap_err();
        assert_eq!(err.variable, "BLANK");
        assert_eq!(
            err.to_string(),
            "configuration: BLANK: is required: the lake"
        );
        assert_eq!(e.prefix("PREFIX", "x/").unwrap(), "ocsf/");
        assert_eq!(e.prefix("UNSET", "quarantine").unwrap(), "quarantine/");
        assert_eq!(e.prefix("ROOTED", "x/").unwrap_err().variable, "ROOTED");
        assert_eq!(e.number("N", 1, 1, 9).unwrap(), 7);
        assert_eq!(e.number("UNSET", 3, 1, 9).unwrap(), 3);
        assert_eq!(e.number("BIG", 1, 1, 9).unwrap_err().variable, "BIG");
        assert!(e.flag("YES", false).unwrap());
        assert!(!e.flag("UNSET", false).unwrap());
        assert_eq!(e.flag("MAYBE", true).unwrap_err().variable, "MAYBE");
    }
}
