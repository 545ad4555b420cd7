//! A small command-line parser: flags and options in any order, `--name value` or
//! `--name=value`, and `--` to end options. Each command takes what it knows and then
//! asks for the positionals, which fails on anything left unrecognised.

use std::str::FromStr;

use tern::{Error, Result};

pub struct Args {
    items: Vec<Option<String>>,
    /// Index of the `--` separator, if any: nothing after it is an option.
    end_of_options: usize,
}

impl Args {
    pub fn new(items: Vec<String>) -> Args {
        let end_of_options = items.iter().position(|a| a == "--").unwrap_or(items.len());
        Args {
            items: items.into_iter().map(Some).collect(),
            end_of_options,
        }
    }

    /// True if any of `names` is present (and removes it).
    pub fn flag(&mut self, names: &[&str]) -> bool {
        let mut found = false;
        for i in 0..self.end_of_options {
            if self.items[i].as_deref().is_some_and(|a| names.contains(&a)) {
                self.items[i] = None;
                found = true;
            }
        }
        found
    }

    /// The value of the last occurrence of any of `names` (and removes them).
    #[allow(dead_code)] // for the commands that take options with values
    pub fn value(&mut self, names: &[&str]) -> Result<Option<String>> {
        let mut out = None;
        let mut i = 0;
        while i < self.end_of_options {
            let Some(a) = self.items[i].clone() else {
                i += 1;
                continue;
            };
            if names.contains(&a.as_str()) {
                let v = (i + 1 < self.end_of_options)
                    .then(|| self.items[i + 1].take())
                    .flatten()
                    .ok_or_else(|| Error::invalid(format!("{a} needs a value")))?;
                self.items[i] = None;
                out = Some(v);
                i += 2;
                continue;
            }
            if let Some((k, v)) = a.split_once('=') {
                if names.contains(&k) && k.starts_with("--") {
                    self.items[i] = None;
                    out = Some(v.to_string());
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// The value of `names` parsed as `T`.
    #[allow(dead_code)] // for the commands that take options with values
    pub fn parsed<T: FromStr>(&mut self, names: &[&str]) -> Result<Option<T>> {
        match self.value(names)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::invalid(format!(
                    "{}: cannot read '{v}' as a value of this option",
                    names[0]
                ))
            }),
        }
    }

    /// What remains: the positional arguments. Fails on an unknown option.
    pub fn positionals(self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (i, a) in self.items.into_iter().enumerate() {
            let Some(a) = a else { continue };
            if i < self.end_of_options {
                if a.starts_with('-') && a.len() > 1 && a.parse::<f64>().is_err() {
                    return Err(Error::invalid(format!("unknown option {a}")));
                }
                out.push(a);
            } else if i > self.end_of_options {
                out.push(a);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::new(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn options_flags_and_positionals() {
        let mut a = args(&[
            "-m",
            "x.gguf",
            "--json",
            "--n=5",
            "text",
            "--",
            "--not-an-option",
        ]);
        assert_eq!(
            a.value(&["-m", "--model"]).unwrap().as_deref(),
            Some("x.gguf")
        );
        assert!(a.flag(&["--json"]));
        assert_eq!(a.parsed::<u32>(&["--n"]).unwrap(), Some(5));
        assert_eq!(a.positionals().unwrap(), vec!["text", "--not-an-option"]);
    }

    #[test]
    fn errors() {
        assert!(args(&["--bogus"]).positionals().is_err());
        assert!(args(&["-m"]).value(&["-m"]).is_err());
        assert!(args(&["--n", "x"]).parsed::<u32>(&["--n"]).is_err());
        assert_eq!(args(&["-1.5"]).positionals().unwrap(), vec!["-1.5"]);
    }
}
