//! Environment variable references in the configuration, expanded after parsing, one
//! string scalar at a time.
//!
//! Forms: `${NAME}`, `$NAME` (as ECAD Signatory's files use, e.g. `base_dir: $HOME/.signatory`),
//! `${NAME:-fallback}` (the fallback when `NAME` is unset or empty) and `$$` for a literal `$`.
//! A `$` followed by anything else is kept as it is. A variable that is not set is an error
//! naming it: a silently empty `base_dir` or key file path would be worse than no start.
//!
//! The YAML is parsed first and only then are strings expanded, so a variable's value is
//! always the whole or part of one string: a newline, a `#` or a `: ` in it is text, never
//! YAML (no new keys, no cut-off comment). Mapping keys are expanded too (a baker's key hash
//! under `tezos:` may come from the environment); a key that expands to one already in its
//! mapping is an error. Comments are not values, so they are never expanded.
//!
//! An expanded scalar stays a string, even when it reads `6732` or `true`: it is never
//! re-read as YAML. Settings that take a number or a boolean accept one written as a string
//! (see `crate::scalars`), so `max_connections: ${MAX}` keeps working.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::{Mapping, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

/// Why the configuration could not be expanded. Names variables, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvError {
    Unset { line: usize, variable: String },
    Malformed { line: usize, reason: String },
}

/// Why parsing with expansion failed.
#[derive(Debug)]
pub(crate) enum ParseError {
    Env(EnvError),
    /// Not YAML, or not a shape a configuration value can have (a key given twice).
    Yaml(serde_yaml_ng::Error),
}

/// A parsed configuration with its references expanded.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub value: Value,
    /// Each string that expansion changed, as expanded and as written, so that error
    /// messages can show what was written instead of the value (which may be a secret).
    pub sources: Vec<(String, String)>,
}

/// Parse `text` as YAML and expand every reference in its strings (keys included).
pub(crate) fn parse_expanded(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Expanded, ParseError> {
    let context = Context {
        lookup,
        failure: RefCell::new(None),
        sources: RefCell::new(Vec::new()),
    };
    let parsed = ExpandSeed(&context).deserialize(serde_yaml_ng::Deserializer::from_str(text));
    let failure = context.failure.into_inner();
    match (parsed, failure) {
        (Ok(value), None) => Ok(Expanded {
            value,
            sources: context.sources.into_inner(),
        }),
        // The parser places the error at the scalar that held the reference.
        (Err(e), Some(failure)) => {
            let line = e.location().map_or(0, |l| l.line());
            Err(ParseError::Env(match failure {
                RefError::Unset(variable) => EnvError::Unset { line, variable },
                RefError::Malformed(reason) => EnvError::Malformed { line, reason },
            }))
        }
        (Err(e), None) => Err(ParseError::Yaml(e)),
        // Unreachable (a failure is always returned as an error); refuse rather than trust.
        (Ok(_), Some(_)) => Err(ParseError::Env(EnvError::Malformed {
            line: 0,
            reason: "environment expansion failed".to_owned(),
        })),
    }
}

/// What is wrong with one reference, before the parser says where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RefError {
    Unset(String),
    Malformed(String),
}

struct Context<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// The reference that stopped parsing (serde errors carry only a message).
    failure: RefCell<Option<RefError>>,
    sources: RefCell<Vec<(String, String)>>,
}

impl Context<'_> {
    fn string<E: de::Error>(&self, written: &str) -> Result<Value, E> {
        match expand_str(written, self.lookup) {
            Ok(Cow::Borrowed(same)) => Ok(Value::String(same.to_owned())),
            Ok(Cow::Owned(expanded)) => {
                self.sources
                    .borrow_mut()
                    .push((expanded.clone(), written.to_owned()));
                Ok(Value::String(expanded))
            }
            Err(failure) => {
                *self.failure.borrow_mut() = Some(failure);
                Err(E::custom("environment variable reference"))
            }
        }
    }
}

struct ExpandSeed<'c, 'a>(&'c Context<'a>);

impl<'de> DeserializeSeed<'de> for ExpandSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Builds the same [`Value`] the YAML library would, expanding strings on the way.
impl<'de> Visitor<'de> for ExpandSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.0.string(s)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element_seed(ExpandSeed(self.0))? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut mapping = Mapping::new();
        while let Some(key) = access.next_key_seed(ExpandSeed(self.0))? {
            if mapping.contains_key(&key) {
                let name = key.as_str().unwrap_or("a key");
                return Err(de::Error::custom(format_args!(
                    "`{name}` is given twice in this mapping"
                )));
            }
            let value = access.next_value_seed(ExpandSeed(self.0))?;
            mapping.insert(key, value);
        }
        Ok(Value::Mapping(mapping))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _access: A) -> Result<Value, A::Error> {
        // Custom tags (`!name value`) mean nothing in this schema; refused rather than
        // passed on unexpanded.
        Err(de::Error::custom(
            "YAML tags (`!name`) are not supported in the configuration",
        ))
    }
}

/// Expand every reference in one string; borrowed back when there is none.
fn expand_str<'s>(
    text: &'s str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Cow<'s, str>, RefError> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let Some((inner, tail)) = braced.split_once('}') else {
                return Err(RefError::Malformed("`${` without a closing `}`".to_owned()));
            };
            let (name, fallback) = match inner.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inner, None),
            };
            // `${A:-${B}}` would read as fallback `${B` plus a stray `}`: nesting is not
            // supported, so say so rather than produce a path nobody wrote.
            if fallback.is_some_and(|f| f.contains('$')) {
                return Err(RefError::Malformed(format!(
                    "`${{{inner}}}`: a fallback cannot contain `$` (references do not nest)"
                )));
            }
            if !is_name(name) {
                return Err(RefError::Malformed(format!(
                    "`${{{inner}}}` is not a variable reference (names are letters, digits \
                     and `_`, not starting with a digit; write `$$` for a literal `$`)"
                )));
            }
            match (lookup(name), fallback) {
                (Some(value), Some(fallback)) if value.is_empty() => out.push_str(fallback),
                (Some(value), _) => out.push_str(&value),
                (None, Some(fallback)) => out.push_str(fallback),
                (None, None) => return Err(RefError::Unset(name.to_owned())),
            }
            rest = tail;
        } else {
            let (name, tail) = after.split_at(name_prefix_len(after));
            if name.is_empty() {
                out.push('$');
            } else {
                let value = lookup(name).ok_or_else(|| RefError::Unset(name.to_owned()))?;
                out.push_str(&value);
            }
            rest = tail;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Length of the variable name at the start of `s` (0 when there is none).
fn name_prefix_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map_or(s.len(), |(i, _)| i)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && name_prefix_len(s) == s.len()
}

/// `message` with every expanded string quoted in it (`"…"` or `` `…` ``, as error
/// messages quote values) replaced by the text it was written as, so no message shows a
/// value taken from the environment.
pub(crate) fn redact(message: &str, sources: &[(String, String)]) -> String {
    let mut out = message.to_owned();
    for (expanded, written) in sources {
        for (open, close) in [('"', '"'), ('`', '`')] {
            let quoted = format!("{open}{expanded}{close}");
            if out.contains(&quoted) {
                out = out.replace(&quoted, &format!("{open}{written}{close}"));
            }
        }
        // serde quotes strings with their escapes (`"a\nb"`): cover that form too.
        let escaped = format!("{expanded:?}");
        if out.contains(&escaped) {
            out = out.replace(&escaped, &format!("{written:?}"));
        }
    }
    out
}

/// A key path with any key taken from the environment shown as it was written (key paths
/// do not quote their segments).
pub(crate) fn redact_path(key_path: &str, sources: &[(String, String)]) -> String {
    sources
        .iter()
        .filter(|(expanded, _)| !expanded.is_empty())
        .fold(key_path.to_owned(), |path, (expanded, written)| {
            path.replace(expanded.as_str(), written)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/baker".to_owned()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("6732".to_owned()),
            _ => None,
        }
    }

    /// The value of key `a` (or the single key) once `text` is parsed and expanded.
    fn run(text: &str) -> Result<Value, EnvError> {
        match parse_expanded(text, &env) {
            Ok(expanded) => Ok(expanded.value),
            Err(ParseError::Env(e)) => Err(e),
            Err(ParseError::Yaml(e)) => panic!("not YAML: {e}"),
        }
    }

    fn value(text: &str, key: &str) -> String {
        let value = run(text).unwrap();
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string `{key}` in {value:?}"))
            .to_owned()
    }

    #[test]
    fn both_forms_and_fallbacks_expand() {
        assert_eq!(
            value("base_dir: $HOME/.signatory\n", "base_dir"),
            "/home/baker/.signatory"
        );
        assert_eq!(value("a: ${HOME}x:${PORT}", "a"), "/home/bakerx:6732");
        assert_eq!(value("a: ${NOPE:-/var/lib}", "a"), "/var/lib");
        assert_eq!(value("a: ${EMPTY:-d}", "a"), "d");
        assert_eq!(value("a: ${EMPTY}|", "a"), "|");
        assert_eq!(value("a: ${HOME:-d}", "a"), "/home/baker");
    }

    #[test]
    fn literal_dollars_survive() {
        assert_eq!(value("p: pa$$word", "p"), "pa$word");
        assert_eq!(value("p: 5$ or $1 or $-x $", "p"), "5$ or $1 or $-x $");
        assert_eq!(run("# comment with $UNSET\n").unwrap(), Value::Null);
    }

    /// A comment at the end of a line is YAML's, not the value's: never expanded.
    #[test]
    fn trailing_comments_are_not_expanded() {
        assert_eq!(
            value("base_dir: $HOME/s  # was $OLD_DIR, costs $$5\n", "base_dir"),
            "/home/baker/s"
        );
        assert_eq!(value("a: $HOME\t# $NOPE", "a"), "/home/baker");
        // Not comments: `#` inside a word, or inside quotes.
        assert_eq!(value("a: x#$HOME", "a"), "x#/home/baker");
        assert_eq!(value("a: 'x # $HOME'", "a"), "x # /home/baker");
        assert_eq!(value("a: \"x # $HOME\"", "a"), "x # /home/baker");
        assert_eq!(
            value("a: \"q\\\" # $HOME\" # $NOPE", "a"),
            "q\" # /home/baker"
        );
        assert_eq!(
            value("a: 'it''s # $HOME' # $NOPE", "a"),
            "it's # /home/baker"
        );
    }

    /// A value is text in one string, whatever it holds: it adds no key and loses nothing
    /// after a `#`.
    #[test]
    fn values_are_never_read_as_yaml() {
        let hostile = |name: &str| match name {
            "LINES" => Some("/k.json\nserver:\n  address: 0.0.0.0:1".to_owned()),
            "HASH" => Some("/k.json #x".to_owned()),
            "NUMBER" => Some("6732".to_owned()),
            _ => None,
        };
        let parsed = parse_expanded("a: ${LINES}\nb: ${HASH}\nc: $NUMBER\n", &hostile).unwrap();
        let mapping = parsed.value.as_mapping().unwrap();
        assert_eq!(mapping.len(), 3);
        assert_eq!(
            parsed.value.get("a").and_then(Value::as_str),
            Some("/k.json\nserver:\n  address: 0.0.0.0:1")
        );
        assert_eq!(
            parsed.value.get("b").and_then(Value::as_str),
            Some("/k.json #x")
        );
        // Still a string: re-typing would be re-reading.
        assert_eq!(parsed.value.get("c"), Some(&Value::String("6732".into())));
    }

    #[test]
    fn keys_expand_and_may_not_collide() {
        let parsed = run("${PORT}: x\nitems: [$HOME, 1]\n").unwrap();
        assert_eq!(parsed.get("6732").and_then(Value::as_str), Some("x"));
        assert_eq!(
            parsed.get("items"),
            Some(&Value::Sequence(vec![
                Value::String("/home/baker".into()),
                Value::Number(1.into())
            ]))
        );
        match parse_expanded("/home/baker: a\n$HOME: b\n", &env) {
            Err(ParseError::Yaml(e)) => assert!(e.to_string().contains("given twice"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unset_variables_are_errors_with_their_line() {
        assert_eq!(
            run("a: 1\nb: $NOPE/x\n"),
            Err(EnvError::Unset {
                line: 2,
                variable: "NOPE".to_owned()
            })
        );
        assert_eq!(
            run("b: ${NOPE}"),
            Err(EnvError::Unset {
                line: 1,
                variable: "NOPE".to_owned()
            })
        );
        assert_eq!(
            run("a:\n  - x\n  - ${NOPE}: 1\n"),
            Err(EnvError::Unset {
                line: 3,
                variable: "NOPE".to_owned()
            })
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            run("a: ${HOME"),
            Err(EnvError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            run("a: ${1X}"),
            Err(EnvError::Malformed { line: 1, .. })
        ));
        assert!(matches!(run("a: ${}"), Err(EnvError::Malformed { .. })));
        // Nesting is refused, not read as the fallback `${B` followed by `}`.
        assert!(matches!(
            run("a: ${UNSET_FOR_NESTING:-${HOME}}"),
            Err(EnvError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn redaction_shows_what_was_written() {
        let sources = vec![("s3cr3t\nx".to_owned(), "${TOKEN}".to_owned())];
        assert_eq!(
            redact(
                "invalid type: string \"s3cr3t\\nx\", expected u64",
                &sources
            ),
            "invalid type: string \"${TOKEN}\", expected u64"
        );
        let sources = vec![("hunter2".to_owned(), "${PW}".to_owned())];
        assert_eq!(
            redact("`hunter2` is not a public key", &sources),
            "`${PW}` is not a public key"
        );
    }
}
