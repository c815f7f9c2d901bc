//! The `arguments` input: split like a POSIX shell would (quotes and
//! backslashes), never run through one, and checked for flags that would
//! take helm away from the task's private kubeconfig.

/// Extra arguments that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unterminated {0} quote")]
    Unterminated(&'static str),
    #[error("{flag} is not allowed: {reason}")]
    Refused { flag: String, reason: &'static str },
}

/// Flags the task decides itself, and why.
const REFUSED: &[(&str, &str)] = &[
    ("--kubeconfig", "the task uses its own private kubeconfig"),
    ("--kube-context", "the task uses its own private kubeconfig"),
    ("--kube-token", "the task's kubeconfig provides the identity"),
    ("--kube-apiserver", "the task's kubeconfig names the cluster"),
    ("--kube-ca-file", "the task's kubeconfig holds the cluster's CA"),
    ("--kube-as-user", "impersonation would change the identity the task checked"),
    ("--kube-as-group", "impersonation would change the identity the task checked"),
    ("--kube-insecure-skip-tls-verify", "the task verifies the cluster's certificate"),
    ("--kube-tls-server-name", "the task's kubeconfig names the cluster"),
    ("--namespace", "use the namespace input"),
    ("-n", "use the namespace input"),
    ("--password", "use the helmRepoPassword input, which reaches helm through stdin"),
    ("--output", "the task reads the release itself"),
    ("-o", "the task reads the release itself"),
];

/// Splits `text` into arguments like `sh` would, without expansions.
pub fn split(text: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(Error::Unterminated("single")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some('\n') => {}
                            Some(c) => current.extend(['\\', c]),
                            None => return Err(Error::Unterminated("double")),
                        },
                        Some(c) => current.push(c),
                        None => return Err(Error::Unterminated("double")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Refuses flags that would replace the task's kubeconfig, context, identity
/// or namespace, in any spelling (`--flag value`, `--flag=value`, `-nvalue`).
pub fn check(args: &[String]) -> Result<(), Error> {
    for arg in args {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
        let refused = REFUSED
            .iter()
            .find(|(name, _)| flag == *name || (name.len() == 2 && arg.starts_with(name) && !arg.starts_with("--")));
        if let Some((name, reason)) = refused {
            return Err(Error::Refused { flag: name.to_string(), reason });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap()
    }

    #[test]
    fn splitting_table() {
        assert_eq!(words("--a b  c"), ["--a", "b", "c"]);
        assert_eq!(words("--description 'two words'"), ["--description", "two words"]);
        assert_eq!(words(r#"--set-json "a={\"b\":1}""#), ["--set-json", r#"a={"b":1}"#]);
        assert_eq!(words(r"one\ word"), ["one word"]);
        assert_eq!(words("''"), [""]);
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(words("$HOME `x` ;|&"), ["$HOME", "`x`", ";|&"]);
        assert_eq!(words(" \n\t"), Vec::<String>::new());
        assert_eq!(split("'open"), Err(Error::Unterminated("single")));
        assert_eq!(split("\"open"), Err(Error::Unterminated("double")));
    }

    #[test]
    fn refusal_table() {
        let refused = |text: &str| check(&words(text)).unwrap_err().to_string();
        assert!(refused("--kubeconfig /home/me/.kube/config").contains("private kubeconfig"));
        assert!(refused("--kube-context=prod").contains("--kube-context"));
        assert!(refused("--kube-token x").contains("identity"));
        assert!(refused("--kube-apiserver https://x").contains("--kube-apiserver"));
        assert!(refused("--kube-ca-file ca").contains("--kube-ca-file"));
        assert!(refused("--kube-as-user admin").contains("impersonation"));
        assert!(refused("-n other").contains("namespace input"));
        assert!(refused("-nother").contains("namespace input"));
        assert!(refused("--namespace=other").contains("namespace input"));
        assert!(refused("--password hunter2").contains("stdin"));
        assert!(refused("-o json").contains("reads the release"));
        for ok in
            ["--force", "--description 'x y'", "--history-max 5", "--no-hooks", "--set a=b", "--server-side=false"]
        {
            assert_eq!(check(&words(ok)), Ok(()), "{ok}");
        }
    }
}
