//! A small YAML reader for the recipes the tests cannot hand to a real
//! Traefik (Kubernetes CRDs, Docker Compose labels) and for reading back the
//! Cohort configuration of the ones they can.
//!
//! It reads the subset the recipes are written in — block mappings and
//! sequences (also `- key: value` items), flow sequences (`[a, "b"]`), empty
//! or one-line flow mappings (`{}`, `{a: b}`), plain, single- and
//! double-quoted scalars, comments and `---` documents — and fails on
//! anything else (tabs, anchors, tags, block scalars, multi-line plain
//! scalars, bad escapes, duplicate keys), so a recipe that would not parse
//! the same everywhere is caught. Every scalar becomes a JSON string, as
//! Traefik hands plugin configurations over; `null`, `~` and empty values
//! become JSON null.

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value};

/// Every document of `text`, in order (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut documents = Vec::new();
    let mut current = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let number = number + 1;
        if raw.trim_end() == "---" {
            if !current.is_empty() {
                documents.push(parse_lines(&std::mem::take(&mut current))?);
            }
            continue;
        }
        ensure!(
            !raw.chars()
                .take_while(|c| c.is_whitespace())
                .any(|c| c == '\t'),
            "line {number}: tab in indentation"
        );
        let content = strip_comment(raw).with_context(|| format!("line {number}: {raw:?}"))?;
        let content = content.trim_end();
        if content.trim().is_empty() {
            continue;
        }
        let indent = content.len() - content.trim_start_matches(' ').len();
        current.push(Line {
            number,
            indent,
            text: content.trim_start_matches(' ').to_owned(),
        });
    }
    if !current.is_empty() {
        documents.push(parse_lines(&current)?);
    }
    Ok(documents)
}

/// The one document of `text`.
pub fn parse(text: &str) -> Result<Value> {
    let mut documents = parse_documents(text)?;
    ensure!(
        documents.len() == 1,
        "expected one YAML document, found {}",
        documents.len()
    );
    Ok(documents.remove(0))
}

/// The value at `path` (map keys; `[i]` for list items), e.g.
/// `get(&v, "http.middlewares.cohort.plugin.cohort")`.
pub fn get<'a>(value: &'a Value, path: &str) -> Result<&'a Value> {
    let mut here = value;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, Some(rest.trim_end_matches(']').parse::<usize>()?)),
            None => (part, None),
        };
        if !key.is_empty() {
            here = here
                .get(key)
                .with_context(|| format!("no {key:?} on the way to {path:?}"))?;
        }
        if let Some(i) = index {
            here = here
                .get(i)
                .with_context(|| format!("no item {i} on the way to {path:?}"))?;
        }
    }
    Ok(here)
}

/// The string at `path`.
pub fn get_str<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
    get(value, path)?
        .as_str()
        .with_context(|| format!("{path:?} is not a scalar"))
}

struct Line {
    number: usize,
    indent: usize,
    text: String,
}

fn parse_lines(lines: &[Line]) -> Result<Value> {
    let mut pos = 0;
    let indent = lines[0].indent;
    let value = block(lines, &mut pos, indent)?;
    if let Some(line) = lines.get(pos) {
        bail!(
            "line {}: unexpected indentation or content: {:?}",
            line.number,
            line.text
        );
    }
    Ok(value)
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn block(lines: &[Line], pos: &mut usize, indent: usize) -> Result<Value> {
    if is_item(&lines[*pos].text) {
        sequence(lines, pos, indent)
    } else {
        mapping(lines, pos, indent, None)
    }
}

/// A block sequence whose `-` are at `indent`.
fn sequence(lines: &[Line], pos: &mut usize, indent: usize) -> Result<Value> {
    let mut items = Vec::new();
    while let Some(line) = lines.get(*pos) {
        if line.indent != indent || !is_item(&line.text) {
            break;
        }
        let rest = line.text.get(1..).unwrap_or_default().trim_start();
        let rest_indent = indent + (line.text.len() - rest.len());
        *pos += 1;
        if rest.is_empty() {
            items.push(nested(lines, pos, indent, false)?);
        } else if split_key(rest)?.is_some() {
            // `- key: value` opens a mapping whose keys align with `key`.
            items.push(mapping(lines, pos, rest_indent, Some((line.number, rest)))?);
        } else {
            items.push(inline(rest).with_context(|| format!("line {}", line.number))?);
        }
    }
    Ok(Value::Array(items))
}

/// A block mapping whose keys are at `indent`; `first` is a key line already
/// taken (the `key: value` after a `- `).
fn mapping(
    lines: &[Line],
    pos: &mut usize,
    indent: usize,
    first: Option<(usize, &str)>,
) -> Result<Value> {
    let mut map = Map::new();
    let mut pending = first.map(|(n, t)| (n, t.to_owned()));
    loop {
        let (number, text) = match pending.take() {
            Some(entry) => entry,
            None => match lines.get(*pos) {
                Some(line) if line.indent == indent && !is_item(&line.text) => {
                    *pos += 1;
                    (line.number, line.text.clone())
                }
                _ => break,
            },
        };
        let (key, rest) = split_key(&text)?
            .with_context(|| format!("line {number}: expected `key: value`, got {text:?}"))?;
        let key = match inline(&key)? {
            Value::String(s) => s,
            other => bail!("line {number}: key {other} is not a scalar"),
        };
        let value = if rest.is_empty() {
            nested(lines, pos, indent, true)?
        } else {
            ensure!(
                !matches!(rest.chars().next(), Some('|' | '>' | '&' | '*' | '!')),
                "line {number}: block scalars, anchors, aliases and tags are not supported"
            );
            inline(&rest).with_context(|| format!("line {number}"))?
        };
        ensure!(
            map.insert(key.clone(), value).is_none(),
            "line {number}: duplicate key {key:?}"
        );
    }
    Ok(Value::Object(map))
}

/// The value under a `key:` or `-` with nothing after it: a deeper block,
/// a sequence at the key's own indentation (`after_key`), or null.
fn nested(lines: &[Line], pos: &mut usize, indent: usize, after_key: bool) -> Result<Value> {
    match lines.get(*pos) {
        Some(next) if next.indent > indent => block(lines, pos, next.indent),
        Some(next) if after_key && next.indent == indent && is_item(&next.text) => {
            sequence(lines, pos, indent)
        }
        _ => Ok(Value::Null),
    }
}

/// Splits `key: value` at the first `:` followed by a space or the end,
/// outside quotes and brackets. `None` when the text is not a key line.
fn split_key(text: &str) -> Result<Option<(String, String)>> {
    let bytes = text.as_bytes();
    let mut quote = None;
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' if i == 0 => quote = Some(b),
                b'[' | b'{' if i == 0 || depth > 0 => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b':' if depth == 0 && (i + 1 == bytes.len() || bytes[i + 1] == b' ') => {
                    // `:` is ASCII: both ends are character boundaries.
                    let (key, rest) = text.split_at(i);
                    return Ok(Some((
                        key.trim().to_owned(),
                        rest.trim_start_matches(':').trim().to_owned(),
                    )));
                }
                _ => {}
            },
        }
    }
    Ok(None)
}

/// A flow value or a scalar on one line.
fn inline(text: &str) -> Result<Value> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .with_context(|| format!("unclosed flow sequence {text:?}"))?;
        return split_flow(inner)?
            .iter()
            .map(|item| inline(item))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array);
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .with_context(|| format!("unclosed flow mapping {text:?}"))?;
        let mut map = Map::new();
        for entry in split_flow(inner)? {
            let (key, value) = split_key(&entry)?
                .with_context(|| format!("flow mapping entry without `: `: {entry:?}"))?;
            let value = if value.is_empty() {
                Value::Null
            } else {
                inline(&value)?
            };
            ensure!(
                map.insert(key.clone(), value).is_none(),
                "duplicate key {key:?}"
            );
        }
        return Ok(Value::Object(map));
    }
    scalar(text)
}

fn scalar(text: &str) -> Result<Value> {
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .with_context(|| format!("unclosed double quote in {text:?}"))?;
        return unescape_double(inner).map(Value::String);
    }
    if let Some(inner) = text.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .with_context(|| format!("unclosed single quote in {text:?}"))?;
        ensure!(
            !inner.replace("''", "").contains('\''),
            "stray single quote in {text:?}"
        );
        return Ok(Value::String(inner.replace("''", "'")));
    }
    ensure!(
        !matches!(
            text.chars().next(),
            Some('&' | '*' | '!' | '|' | '>' | '%' | '@' | '`')
        ),
        "unsupported plain scalar {text:?}"
    );
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => Value::String(text.to_owned()),
    })
}

fn unescape_double(inner: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => bail!("unescaped double quote inside {inner:?}"),
            '\\' => out.push(match chars.next() {
                Some('\\') => '\\',
                Some('"') => '"',
                Some('/') => '/',
                Some('n') => '\n',
                Some('t') => '\t',
                Some('0') => '\0',
                other => bail!("escape \\{other:?} is not valid in a double-quoted YAML string"),
            }),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits the inside of a flow collection at top-level commas.
fn split_flow(inner: &str) -> Result<Vec<String>> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut depth = 0usize;
    for c in inner.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                current.push(c);
            }
            Some(_) => current.push(c),
            None => match c {
                '"' | '\'' if current.trim().is_empty() => {
                    quote = Some(c);
                    current.push(c);
                }
                '[' | '{' => {
                    depth += 1;
                    current.push(c);
                }
                ']' | '}' => {
                    depth = depth.checked_sub(1).context("unbalanced brackets")?;
                    current.push(c);
                }
                ',' if depth == 0 => items.push(std::mem::take(&mut current)),
                c => current.push(c),
            },
        }
    }
    ensure!(
        quote.is_none() && depth == 0,
        "unbalanced flow collection {inner:?}"
    );
    items.push(current);
    let items: Vec<String> = items.into_iter().map(|s| s.trim().to_owned()).collect();
    if items.len() == 1 && items[0].is_empty() {
        return Ok(Vec::new());
    }
    ensure!(
        items.iter().all(|s| !s.is_empty()),
        "empty entry in flow collection {inner:?}"
    );
    Ok(items)
}

/// The line without its comment: `#` at the start or after a space, outside
/// quotes.
fn strip_comment(line: &str) -> Result<&str> {
    let bytes = line.as_bytes();
    let mut quote = None;
    let mut token_start = true;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => {
                if b == b'#' && (i == 0 || bytes[i - 1] == b' ') {
                    return Ok(line.get(..i).unwrap_or(line));
                }
                if (b == b'"' || b == b'\'') && token_start {
                    quote = Some(b);
                }
            }
        }
        // A quote opens a scalar only at the start of a token.
        token_start = matches!(b, b' ' | b'[' | b'{' | b',' | b':' | b'-');
    }
    Ok(line)
}

#[test]
fn reads_the_recipe_subset() {
    let text = r#"
# comment
a:
  b: "x # not a comment"   # a comment
  c: [1, "two", 'th''ree']
  d: {}
  e:
    - name: v1
      default: true
    - name: v2
      weight: 10
  f:
  - plain
  - "Host(`x`) && HeaderRegexp(`Cookie`, `(^|;\\s*)canary=v2(;|$)`)"
  g: ~
---
second: doc
"#;
    let docs = parse_documents(text).unwrap();
    assert_eq!(docs.len(), 2);
    let a = &docs[0]["a"];
    assert_eq!(a["b"], "x # not a comment");
    assert_eq!(a["c"], serde_json::json!(["1", "two", "th'ree"]));
    assert_eq!(a["d"], serde_json::json!({}));
    assert_eq!(a["e"][1]["weight"], "10");
    assert_eq!(get_str(&docs[0], "a.e[0].default").unwrap(), "true");
    assert_eq!(
        a["f"][1],
        "Host(`x`) && HeaderRegexp(`Cookie`, `(^|;\\s*)canary=v2(;|$)`)"
    );
    assert!(a["g"].is_null());
    assert_eq!(docs[1]["second"], "doc");
}

#[test]
fn refuses_what_it_does_not_read() {
    for bad in [
        "a: 1\na: 2",
        "a: \"\\s\"",
        "a: |\n  text",
        "a: &anchor 1",
        "a:\n\t- b",
        "a: [1, 2",
        "a: 'x",
        "a:\n  b: 1\n c: 2",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
}
