//! .dockerignore files, read and matched exactly as Docker does (moby/patternmatcher).
//!
//! This is our own implementation of the documented behaviour, not a call to Docker:
//!
//! - Reading (`ignorefile.ReadAll`): a UTF-8 BOM on the first line is dropped; a line whose
//!   first byte is `#` is a comment; lines are trimmed; blank lines are skipped; each pattern
//!   (after a `!`) is cleaned like Go's `filepath.Clean` and a leading `/` is removed.
//! - Syntax (`filepath.Match`): character classes must be closed and non-empty, `-` and `]`
//!   cannot start a range, a trailing `\` is an error; a bare `!` is an error.
//! - Matching (`Pattern.compile`): `*` and `?` never cross `/`; `**` matches any number of
//!   directories including none (`**/` is the same as `**`); `[...]` and `[^...]` are classes;
//!   `\` escapes the next character. Patterns that are only literal text, `<literal>**` or
//!   `**<literal>` are compared as plain strings, as patternmatcher does (so `**foo` matches
//!   `barfoo`, a quirk kept on purpose).
//! - A path is ignored when the last pattern that matches it, or one of its parent
//!   directories, is not an exception (`!`): `MatchesOrParentMatches`.
//!
//! Deliberate deviation: Docker turns `\X` into the regular expression `\X`, so `\d` means
//! a digit there and `\q` fails at build time. We reject an escaped letter, digit or
//! non-ASCII character up front as an invalid pattern; escaped punctuation is literal, as in
//! Docker. Inside `[...]`, `*` and `?` are plain characters (Docker mangles them).

use std::path::{Path, PathBuf};

use super::Error;

/// The name of the context-wide ignore file.
pub(crate) const DOCKERIGNORE: &str = ".dockerignore";

/// The ignore files that exist for this Dockerfile, the one in use first:
/// `<dockerfile>.dockerignore` next to the Dockerfile wins over `<context>/.dockerignore`
/// (as BuildKit and kaniko do). Both are sent with the context when they exist.
pub(crate) fn find_files(context: &Path, dockerfile_rel: &Path) -> Vec<PathBuf> {
    let mut specific = dockerfile_rel.as_os_str().to_owned();
    specific.push(".dockerignore");
    [PathBuf::from(specific), PathBuf::from(DOCKERIGNORE)]
        .into_iter()
        // A symlink counts too: Docker reads through it (see `walk::ignore_file_target`).
        .filter(|rel| context.join(rel).symlink_metadata().is_ok_and(|m| m.is_file() || m.is_symlink()))
        .collect()
}

/// The parsed patterns of one .dockerignore file.
#[derive(Debug, Default)]
pub(crate) struct Dockerignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    exclusion: bool,
    /// The cleaned pattern without its `!`.
    body: Vec<u8>,
    kind: Kind,
    tokens: Vec<Token>,
}

/// How patternmatcher compares a pattern: plain string operations when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    /// `<literal>**`: the path starts with the literal.
    Prefix,
    /// `**<literal>`: the path ends with the literal (or is it, for `**/<literal>`).
    Suffix,
    Regex,
}

#[derive(Debug, Clone)]
enum Token {
    Literal(u32),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Question,
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
    /// `**` followed by more pattern: `(.*/)?`.
    DeepDirs,
    /// `**` at the end of a pattern that is not plain: `.*`.
    DeepAll,
    /// An unescaped `^` outside a class is a start anchor in Docker's regular expression.
    Anchor,
}

impl Dockerignore {
    /// Parses the text of the ignore file `source` (named in errors with the line number).
    pub(crate) fn parse(text: &[u8], source: &Path) -> Result<Self, Error> {
        let mut patterns = Vec::new();
        for (index, raw) in lines(text).enumerate() {
            let line = if index == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            if line.starts_with(b"#") {
                continue;
            }
            let invalid = |reason: &str| Error::Pattern {
                path: source.to_path_buf(),
                line: index + 1,
                pattern: String::from_utf8_lossy(line).into_owned(),
                reason: reason.to_owned(),
            };
            match read_pattern(line) {
                Ok(Some(pattern)) => patterns.push(pattern),
                Ok(None) => {}
                Err(reason) => return Err(invalid(reason)),
            }
        }
        Ok(Self { patterns })
    }

    /// Whether `path` (relative, slash-separated, clean) is ignored: the last pattern that
    /// matches it or one of its parent directories decides.
    pub(crate) fn matches(&self, path: &[u8]) -> bool {
        let parents: Vec<&[u8]> =
            path.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches(path) || parents.iter().any(|parent| pattern.matches(parent));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an exception pattern could re-include something below the ignored directory
    /// `dir`; only then does the walk descend into it. Errs on the side of descending.
    pub(crate) fn may_reinclude_under(&self, dir: &[u8]) -> bool {
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            if p.body.windows(2).any(|w| w == b"**") {
                return true;
            }
            p.body
                .split(|b| *b == b'/')
                .zip(dir.split(|b| *b == b'/'))
                .all(|(part, name)| compile(part).map_or(true, |(_, tokens)| regex_match(&tokens, &decode(name))))
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl Pattern {
    fn matches(&self, path: &[u8]) -> bool {
        let body = self.body.as_slice();
        match self.kind {
            Kind::Exact => path == body,
            Kind::Prefix => path.starts_with(&body[..body.len() - 2]),
            Kind::Suffix => {
                let suffix = &body[2..];
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            Kind::Regex => regex_match(&self.tokens, &decode(path)),
        }
    }
}

/// Lines as Go's `bufio.ScanLines` yields them: split on `\n`, a trailing `\r` dropped.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let empty = text.is_empty();
    text.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(move |_| !empty)
}

/// One line, as `ReadAll` then `patternmatcher.New` treat it. `Ok(None)` for a blank line.
fn read_pattern(line: &[u8]) -> Result<Option<Pattern>, &'static str> {
    let line = trim(line);
    if line.is_empty() {
        return Ok(None);
    }
    // ReadAll: strip `!`, clean, drop a leading `/`, put the `!` back.
    let (invert, rest) = match line.strip_prefix(b"!") {
        Some(rest) => (true, trim(rest)),
        None => (false, line),
    };
    let mut text = rest.to_vec();
    if !text.is_empty() {
        text = clean(&text);
        if text.len() > 1 && text[0] == b'/' {
            text.remove(0);
        }
    }
    if invert {
        text.insert(0, b'!');
    }
    // New: trim, clean again, then the `!` and the syntax check.
    let text = clean(trim(&text));
    let (exclusion, body) = match text.strip_prefix(b"!") {
        Some(_) if text.len() == 1 => return Err("a bare \"!\" is not a pattern"),
        Some(body) => (true, body),
        None => (false, text.as_slice()),
    };
    check_syntax(body)?;
    let (kind, tokens) = compile(body)?;
    Ok(Some(Pattern { exclusion, body: body.to_vec(), kind, tokens }))
}

/// Go's `strings.TrimSpace`, for ASCII white space.
fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Go's `filepath.Clean` on a slash-separated path.
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|last| *last != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = if rooted { b"/".to_vec() } else { Vec::new() };
    out.extend(parts.join(&b'/'));
    if out.is_empty() { b".".to_vec() } else { out }
}

/// The syntax check of Go's `filepath.Match`, which Docker runs on every pattern.
fn check_syntax(pattern: &[u8]) -> Result<(), &'static str> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 == pattern.len() => return Err("trailing backslash escapes nothing"),
            b'\\' => i += 2,
            b'[' => {
                i += 1;
                if pattern.get(i) == Some(&b'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if pattern.get(i) == Some(&b']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    i = class_char(pattern, i)?;
                    if pattern[i] == b'-' {
                        i = class_char(pattern, i + 1)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one character of a class; returns the index after it.
fn class_char(pattern: &[u8], mut i: usize) -> Result<usize, &'static str> {
    const BAD: &str = "bad character class (unclosed, empty, or a misplaced '-' or ']')";
    match pattern.get(i) {
        None | Some(b'-' | b']') => return Err(BAD),
        Some(b'\\') => i += 1,
        Some(_) => {}
    }
    let rest = pattern.get(i..).filter(|r| !r.is_empty()).ok_or(BAD)?;
    let width = match rest.utf8_chunks().next() {
        Some(chunk) if !chunk.valid().is_empty() => chunk.valid().chars().next().map_or(1, char::len_utf8),
        _ => return Err("invalid UTF-8 in a character class"),
    };
    i += width;
    if i >= pattern.len() {
        return Err(BAD);
    }
    Ok(i)
}

/// patternmatcher's `compile`: the match kind and the regular expression as tokens.
fn compile(body: &[u8]) -> Result<(Kind, Vec<Token>), &'static str> {
    let chars = decode(body);
    let mut kind = Kind::Exact;
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut step = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match char::from_u32(ch).unwrap_or(char::REPLACEMENT_CHARACTER) {
            '*' if chars.get(pos) == Some(&u32::from('*')) => {
                pos += 1;
                if chars.get(pos) == Some(&u32::from('/')) {
                    pos += 1;
                }
                if pos == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::DeepAll);
                        kind = Kind::Regex;
                    }
                } else {
                    tokens.push(Token::DeepDirs);
                    kind = Kind::Regex;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                kind = Kind::Regex;
            }
            '?' => {
                tokens.push(Token::Question);
                kind = Kind::Regex;
            }
            '\\' => {
                // check_syntax guarantees a following character.
                let escaped = chars.get(pos).copied().ok_or("trailing backslash escapes nothing")?;
                pos += 1;
                check_escape(escaped)?;
                tokens.push(Token::Literal(escaped));
                kind = Kind::Regex;
            }
            '[' => {
                let (token, next) = class(&chars, pos)?;
                tokens.push(token);
                pos = next;
                kind = Kind::Regex;
            }
            ']' => {
                tokens.push(Token::Literal(ch));
                kind = Kind::Regex;
            }
            '^' => tokens.push(Token::Anchor),
            _ => tokens.push(Token::Literal(ch)),
        }
        step += 1;
    }
    // A `**` pattern with nothing plain in it is still a prefix/suffix compare in Docker;
    // the tokens are only used for Regex (and for the descend check, where `**` never gets).
    if kind != Kind::Regex {
        tokens = decode(body).into_iter().map(Token::Literal).collect();
    }
    Ok((kind, tokens))
}

/// Docker passes `\X` to Go's regexp: escaped punctuation is literal there, the rest is
/// either a regexp feature or a build-time error. We accept only the literal cases.
fn check_escape(escaped: u32) -> Result<(), &'static str> {
    match char::from_u32(escaped) {
        Some(c) if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(()),
        _ => Err("bad escape: only punctuation can be escaped with '\\'"),
    }
}

/// A character class starting after its `[`; returns the token and the index after `]`.
fn class(chars: &[u32], mut pos: usize) -> Result<(Token, usize), &'static str> {
    const UNCLOSED: &str = "unclosed character class";
    let at = |i: usize| chars.get(i).copied().ok_or(UNCLOSED);
    let negated = chars.get(pos) == Some(&u32::from('^'));
    if negated {
        pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let mut c = at(pos)?;
        if c == u32::from(']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, pos + 1));
        }
        if c == u32::from('\\') {
            pos += 1;
            c = at(pos)?;
            check_escape(c)?;
        }
        pos += 1;
        let mut hi = c;
        if at(pos)? == u32::from('-') && at(pos + 1)? != u32::from(']') {
            pos += 1;
            hi = at(pos)?;
            if hi == u32::from('\\') {
                pos += 1;
                hi = at(pos)?;
                check_escape(hi)?;
            }
            pos += 1;
        }
        ranges.push((c, hi));
    }
}

/// Characters as Go's regexp sees them: invalid UTF-8 bytes are U+FFFD each.
fn decode(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(u32::from));
        out.extend(chunk.invalid().iter().map(|_| 0xFFFD));
    }
    out
}

/// Matches the whole of `text` against the tokens: a position-set simulation, linear in
/// tokens × characters (no backtracking blow-up on `*a*a*a…`).
fn regex_match(tokens: &[Token], text: &[u32]) -> bool {
    const SLASH: u32 = b'/' as u32;
    const NEWLINE: u32 = b'\n' as u32;
    let n = text.len();
    let mut current = vec![false; n + 1];
    current[0] = true;
    for token in tokens {
        let mut next = vec![false; n + 1];
        match token {
            Token::Literal(c) => step_one(&current, &mut next, text, |t| t == *c),
            Token::Question => step_one(&current, &mut next, text, |t| t != SLASH),
            Token::Class { negated, ranges } => step_one(&current, &mut next, text, |t| {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&t)) != *negated
            }),
            Token::Star => {
                let mut on = false;
                for p in 0..=n {
                    on |= current[p];
                    next[p] = on;
                    if p < n && text[p] == SLASH {
                        on = false;
                    }
                }
            }
            Token::DeepDirs => {
                // `(.*/)?`: stay, or run over non-newline characters to just after a `/`.
                let mut on = false;
                for p in 0..n {
                    on |= current[p];
                    next[p] |= current[p];
                    if text[p] == NEWLINE {
                        on = false;
                    } else if text[p] == SLASH && on {
                        next[p + 1] = true;
                    }
                }
                next[n] |= current[n];
            }
            Token::DeepAll => {
                let mut on = false;
                for p in 0..=n {
                    on |= current[p];
                    next[p] = on;
                    if p < n && text[p] == NEWLINE {
                        on = false;
                    }
                }
            }
            Token::Anchor => next[0] = current[0],
        }
        if !next.contains(&true) {
            return false;
        }
        current = next;
    }
    current[n]
}

fn step_one(current: &[bool], next: &mut [bool], text: &[u32], accepts: impl Fn(u32) -> bool) {
    for (p, &c) in text.iter().enumerate() {
        if current[p] && accepts(c) {
            next[p + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &str) -> Dockerignore {
        Dockerignore::parse(patterns.as_bytes(), Path::new(".dockerignore")).expect("valid patterns")
    }

    macro_rules! ignored {
        ($name:ident, $patterns:expr, $path:expr) => {
            #[test]
            fn $name() {
                assert!(matcher($patterns).matches($path.as_bytes()), "{:?} should ignore {:?}", $patterns, $path);
            }
        };
    }

    macro_rules! not_ignored {
        ($name:ident, $patterns:expr, $path:expr) => {
            #[test]
            fn $name() {
                assert!(!matcher($patterns).matches($path.as_bytes()), "{:?} should keep {:?}", $patterns, $path);
            }
        };
    }

    macro_rules! invalid {
        ($name:ident, $patterns:expr, $line:expr) => {
            #[test]
            fn $name() {
                let error = Dockerignore::parse($patterns.as_bytes(), Path::new("ctx/.dockerignore")).unwrap_err();
                let Error::Pattern { line, .. } = &error else { panic!("unexpected error {error}") };
                assert_eq!(*line, $line, "{error}");
                assert!(error.to_string().contains("ctx/.dockerignore line"), "{error}");
            }
        };
    }

    // Plain names and directories.
    ignored!(exact_file, "secret.txt", "secret.txt");
    not_ignored!(exact_is_anchored_at_root, "secret.txt", "sub/secret.txt");
    ignored!(dir_excludes_below, "node_modules", "node_modules/a/b.js");
    ignored!(nested_path, "a/b", "a/b/c");
    not_ignored!(nested_path_other, "a/b", "a/bc");
    ignored!(trailing_slash_is_cleaned, "build/", "build/out.o");
    ignored!(trailing_slash_matches_files_too, "build/", "build");
    ignored!(leading_slash_stripped, "/secret", "secret");
    ignored!(leading_slash_nested, "/a/b", "a/b/c");
    ignored!(dot_slash_cleaned, "./secret", "secret");
    ignored!(dot_dot_cleaned, "a/../secret", "secret");
    not_ignored!(dot_dot_above_root_matches_nothing, "../secret", "secret");
    not_ignored!(lone_dot_matches_nothing, ".", "file");
    ignored!(whitespace_trimmed, "  secret  \t", "secret");
    ignored!(crlf_line_endings, "a\r\nsecret\r\n", "secret");
    ignored!(bom_dropped, "\u{feff}secret", "secret");

    // `*`, `?` and classes.
    ignored!(star_suffix, "*.log", "debug.log");
    not_ignored!(star_does_not_cross_slash, "*.log", "logs/debug.log");
    ignored!(star_in_dir_component, "*/temp", "a/temp");
    not_ignored!(star_one_level_only, "*/temp", "a/b/temp");
    ignored!(star_dir_excludes_below, "*/temp", "a/temp/x/y");
    ignored!(star_matches_empty, "temp*", "temp");
    ignored!(question_one_char, "file?.txt", "file1.txt");
    not_ignored!(question_exactly_one, "file?.txt", "file10.txt");
    not_ignored!(question_not_slash, "a?b", "a/b");
    ignored!(class_range, "file[0-9].txt", "file7.txt");
    not_ignored!(class_range_miss, "file[0-9].txt", "filex.txt");
    ignored!(class_negated, "file[^0-9]", "filex");
    not_ignored!(class_negated_miss, "file[^0-9]", "file5");
    ignored!(class_set, "[abc].md", "b.md");
    ignored!(unicode_question, "caf?", "café");
    ignored!(regex_chars_are_literal, "a+b(c).{d}$", "a+b(c).{d}$");
    not_ignored!(dot_is_literal, "a.c", "abc");

    // `**`.
    ignored!(double_star_any_depth, "**/*.go", "a/b/c.go");
    ignored!(double_star_zero_dirs, "**/*.go", "c.go");
    ignored!(double_star_middle, "a/**/z", "a/b/c/z");
    ignored!(double_star_middle_zero, "a/**/z", "a/z");
    ignored!(double_star_trailing, "a/**", "a/b/c");
    not_ignored!(double_star_trailing_not_dir_itself, "a/**", "ab");
    ignored!(double_star_alone, "**", "anything/at/all");
    ignored!(double_star_literal_suffix, "**/secret.txt", "deep/down/secret.txt");
    ignored!(double_star_literal_suffix_root, "**/secret.txt", "secret.txt");
    ignored!(double_star_suffix_quirk, "**secret", "topsecret");
    not_ignored!(double_star_regex_no_newline, "**/*.go", "a\nb/c.go");

    // Escapes and comments.
    ignored!(escaped_star_literal, "\\*.txt", "*.txt");
    not_ignored!(escaped_star_not_wildcard, "\\*.txt", "a.txt");
    ignored!(escaped_bracket, "\\[x]", "[x]");
    not_ignored!(comment_line, "# secret", "# secret");
    not_ignored!(comment_only_at_line_start, "#secret", "secret");
    ignored!(hash_after_space_is_a_pattern, " #secret", "#secret");
    not_ignored!(blank_lines_skipped, "\n\n   \n", "file");

    // Exceptions, last match wins.
    not_ignored!(exception_reincludes, "*.md\n!README.md", "README.md");
    ignored!(exception_then_exclude, "*.md\n!README.md\nREADME*", "README.md");
    not_ignored!(exception_under_excluded_dir, "docs\n!docs/keep.md", "docs/keep.md");
    ignored!(exception_under_excluded_dir_others, "docs\n!docs/keep.md", "docs/other.md");
    not_ignored!(exception_of_parent_dir, "docs/**\n!docs/api", "docs/api/x.md");
    not_ignored!(exception_with_wildcards, "vendor\n!vendor/**/*.go", "vendor/a/b.go");
    ignored!(exclude_everything_but, "*\n!src", "README");
    not_ignored!(exclude_everything_but_kept, "*\n!src", "src/main.rs");
    not_ignored!(exception_leading_slash, "secret*\n!/secret-ok", "secret-ok");
    ignored!(exception_trimmed, "a\n!  b\nb", "b");

    // Invalid patterns name the line.
    invalid!(bare_bang, "ok\n!\n", 2);
    invalid!(bare_bang_slash, "# c\n\n!/", 3);
    invalid!(unclosed_class, "[abc", 1);
    invalid!(empty_class, "a\nb\n[]", 3);
    invalid!(class_leading_dash, "[-a]", 1);
    invalid!(class_trailing_dash, "[a-]", 1);
    invalid!(trailing_backslash, "a\\", 1);
    invalid!(letter_escape, "x\n\\d", 2);

    #[test]
    fn descends_only_where_an_exception_could_match() {
        let m = matcher("docs\n!docs/keep.md\nbuild");
        assert!(m.may_reinclude_under(b"docs"));
        assert!(!m.may_reinclude_under(b"build"));
        assert!(!m.may_reinclude_under(b"docs/deep"));
        let m = matcher("vendor\n!**/*.go");
        assert!(m.may_reinclude_under(b"vendor"));
        assert!(!matcher("*").may_reinclude_under(b"x"));
        assert!(matcher("a\n!a*/[bc]/keep").may_reinclude_under(b"ab/c"));
    }

    #[test]
    fn dockerfile_specific_file_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("app")).expect("mkdir");
        std::fs::write(dir.path().join(".dockerignore"), "a").expect("write");
        assert_eq!(find_files(dir.path(), Path::new("app/Dockerfile")), [PathBuf::from(".dockerignore")]);
        std::fs::write(dir.path().join("app/Dockerfile.dockerignore"), "b").expect("write");
        assert_eq!(
            find_files(dir.path(), Path::new("app/Dockerfile")),
            [PathBuf::from("app/Dockerfile.dockerignore"), PathBuf::from(".dockerignore")]
        );
        assert!(find_files(dir.path(), Path::new("Dockerfile.prod")).len() == 1);
    }
}
