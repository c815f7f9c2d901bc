//! task.json `visibleRule`s, evaluated as the task editor does, so that an
//! input the editor hides is ignored here too (the agent still sends it, with
//! its default).
//!
//! Grammar: conditions joined by `&&` or `||` (`&&` binds tighter), each
//! `<input> <operator> <value>`, with the operators `=`, `==`, `!=`, `<`, `>`,
//! `<=`, `>=`, `Contains`, `NotContains`, `StartsWith`, `NotStartsWith`,
//! `EndsWith` and `NotEndsWith`. Text is compared case-insensitively.

/// Whether the rule holds, given a lookup of other inputs' current values.
/// A rule that cannot be parsed counts as visible: better to read an input
/// than to silently drop it.
pub fn is_visible<'a>(rule: &str, value_of: impl Fn(&str) -> Option<&'a str>) -> bool {
    rule.split("||").any(|all| all.split("&&").all(|condition| holds(condition.trim(), &value_of).unwrap_or(true)))
}

const WORD_OPERATORS: [&str; 6] = ["NotContains", "NotStartsWith", "NotEndsWith", "Contains", "StartsWith", "EndsWith"];
const SYMBOL_OPERATORS: [&str; 7] = ["==", "!=", "<=", ">=", "=", "<", ">"];

fn holds<'a>(condition: &str, value_of: &impl Fn(&str) -> Option<&'a str>) -> Option<bool> {
    let (name, operator, expected) = split_condition(condition)?;
    let actual = value_of(name).unwrap_or("").trim().to_lowercase();
    let expected = expected.trim().trim_matches('"').to_lowercase();
    let number = |s: &str| s.parse::<f64>().ok();
    Some(match operator {
        "=" | "==" => actual == expected,
        "!=" => actual != expected,
        "Contains" => actual.contains(&expected),
        "NotContains" => !actual.contains(&expected),
        "StartsWith" => actual.starts_with(&expected),
        "NotStartsWith" => !actual.starts_with(&expected),
        "EndsWith" => actual.ends_with(&expected),
        "NotEndsWith" => !actual.ends_with(&expected),
        "<" => number(&actual)? < number(&expected)?,
        ">" => number(&actual)? > number(&expected)?,
        "<=" => number(&actual)? <= number(&expected)?,
        ">=" => number(&actual)? >= number(&expected)?,
        _ => return None,
    })
}

fn split_condition(condition: &str) -> Option<(&str, &str, &str)> {
    for op in WORD_OPERATORS {
        if let Some(at) = condition.find(&format!(" {op} ")) {
            return Some((condition[..at].trim(), op, &condition[at + op.len() + 2..]));
        }
    }
    let at = condition.find(['=', '!', '<', '>'])?;
    let op = SYMBOL_OPERATORS.into_iter().find(|op| condition[at..].starts_with(op))?;
    Some((condition[..at].trim(), op, &condition[at + op.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(rule: &str, values: &[(&'static str, &'static str)]) -> bool {
        is_visible(rule, |name| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn equality_with_spaces_in_values() {
        let values = [("connectionType", "Kubeconfig file")];
        assert!(visible("connectionType = Kubeconfig file", &values));
        assert!(visible("connectionType == kubeconfig FILE", &values));
        assert!(!visible("connectionType = In-cluster", &values));
        assert!(visible("connectionType != Stream", &values));
    }

    #[test]
    fn booleans_compare_case_insensitively() {
        assert!(visible("cache = true", &[("cache", "True")]));
        assert!(!visible("cache = true", &[("cache", "false")]));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let values = [("a", "1"), ("b", "2"), ("c", "x")];
        assert!(visible("a = 1 && b = 2", &values));
        assert!(!visible("a = 1 && b = 3", &values));
        assert!(visible("a = 9 && b = 9 || c = x", &values));
    }

    #[test]
    fn word_operators_and_numbers() {
        let values = [("url", "oci://registry/chart"), ("n", "5")];
        assert!(visible("url StartsWith oci://", &values));
        assert!(visible("url NotEndsWith .tgz", &values));
        assert!(visible("url Contains registry", &values));
        assert!(visible("n > 3", &values));
        assert!(!visible("n <= 4", &values));
    }

    #[test]
    fn empty_string_comparison() {
        assert!(visible("x != \"\"", &[("x", "set")]));
        assert!(!visible("x != \"\"", &[("x", "")]));
    }
}
