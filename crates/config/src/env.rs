//! Environment variable references in the configuration text, expanded before parsing.
//!
//! Forms: `${NAME}`, `$NAME` (as ECAD Signatory's files use, e.g. `base_dir: $HOME/.signatory`),
//! `${NAME:-fallback}` (the fallback when `NAME` is unset or empty) and `$$` for a literal `$`.
//! A `$` followed by anything else is kept as it is. A variable that is not set is an error
//! naming it: a silently empty `base_dir` or key file path would be worse than no start.
//! Comments (whole lines, and the end of a line from a `#` after a space, outside quotes)
//! are left alone, so prose in comments never needs escaping.

/// Why the configuration text could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvError {
    Unset { line: usize, variable: String },
    Malformed { line: usize, reason: String },
}

/// Expand every reference in `text`, looking variables up with `lookup`.
pub(crate) fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (content, comment) = line.split_at(comment_start(line));
        expand_line(content, index + 1, lookup, &mut out)?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Where the line's YAML comment starts (its length when it has none): a `#` at the start
/// or after a space or tab, outside single- and double-quoted text.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    let mut chars = line.char_indices();
    while let Some((at, ch)) = chars.next() {
        match (quote, ch) {
            (None, '#') if previous == ' ' || previous == '\t' => return at,
            (None, '\'' | '"') => quote = Some(ch),
            // `\"` inside double quotes is a quote, not the end.
            (Some('"'), '\\') => {
                chars.next();
            }
            // `''` inside single quotes closes and reopens: the same as staying inside.
            (Some(open), _) if ch == open => quote = None,
            _ => {}
        }
        previous = ch;
    }
    line.len()
}

fn expand_line(
    line: &str,
    line_number: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), EnvError> {
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let Some(close) = braced.find('}') else {
                return Err(EnvError::Malformed {
                    line: line_number,
                    reason: "`${` without a closing `}`".to_owned(),
                });
            };
            let inner = &braced[..close];
            let (name, fallback) = match inner.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inner, None),
            };
            if !is_name(name) {
                return Err(EnvError::Malformed {
                    line: line_number,
                    reason: format!(
                        "`${{{inner}}}` is not a variable reference (names are letters, digits \
                         and `_`, not starting with a digit; write `$$` for a literal `$`)"
                    ),
                });
            }
            match (lookup(name), fallback) {
                (Some(value), Some(fallback)) if value.is_empty() => out.push_str(fallback),
                (Some(value), _) => out.push_str(&value),
                (None, Some(fallback)) => out.push_str(fallback),
                (None, None) => {
                    return Err(EnvError::Unset {
                        line: line_number,
                        variable: name.to_owned(),
                    })
                }
            }
            rest = &braced[close + 1..];
        } else {
            let name_len = name_prefix_len(after);
            if name_len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            let value = lookup(name).ok_or_else(|| EnvError::Unset {
                line: line_number,
                variable: name.to_owned(),
            })?;
            out.push_str(&value);
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    Ok(())
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

    fn run(text: &str) -> Result<String, EnvError> {
        expand(text, &env)
    }

    #[test]
    fn both_forms_and_fallbacks_expand() {
        assert_eq!(
            run("base_dir: $HOME/.signatory\n").unwrap(),
            "base_dir: /home/baker/.signatory\n"
        );
        assert_eq!(run("a: ${HOME}x:${PORT}").unwrap(), "a: /home/bakerx:6732");
        assert_eq!(run("a: ${NOPE:-/var/lib}").unwrap(), "a: /var/lib");
        assert_eq!(run("a: ${EMPTY:-d}").unwrap(), "a: d");
        assert_eq!(run("a: ${EMPTY}|").unwrap(), "a: |");
        assert_eq!(run("a: ${HOME:-d}").unwrap(), "a: /home/baker");
    }

    #[test]
    fn literal_dollars_survive() {
        assert_eq!(run("p: pa$$word").unwrap(), "p: pa$word");
        assert_eq!(run("p: 5$ or $1 or $-x $").unwrap(), "p: 5$ or $1 or $-x $");
        assert_eq!(
            run("# comment with $UNSET\n").unwrap(),
            "# comment with $UNSET\n"
        );
    }

    /// A comment at the end of a line is YAML's, not the value's: left as it is.
    #[test]
    fn trailing_comments_are_not_expanded() {
        assert_eq!(
            run("base_dir: $HOME/s  # was $OLD_DIR, costs $$5\n").unwrap(),
            "base_dir: /home/baker/s  # was $OLD_DIR, costs $$5\n"
        );
        assert_eq!(run("a: $HOME\t# $NOPE").unwrap(), "a: /home/baker\t# $NOPE");
        // Not comments: `#` inside a word, or inside quotes.
        assert_eq!(run("a: x#$HOME").unwrap(), "a: x#/home/baker");
        assert_eq!(run("a: 'x # $HOME'").unwrap(), "a: 'x # /home/baker'");
        assert_eq!(run("a: \"x # $HOME\"").unwrap(), "a: \"x # /home/baker\"");
        assert_eq!(
            run("a: \"q\\\" # $HOME\" # $NOPE").unwrap(),
            "a: \"q\\\" # /home/baker\" # $NOPE"
        );
        assert_eq!(
            run("a: 'it''s # $HOME' # $NOPE").unwrap(),
            "a: 'it''s # /home/baker' # $NOPE"
        );
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
    }
}
