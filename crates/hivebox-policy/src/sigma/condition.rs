//! Sigma's `condition` expressions: `and`, `or`, `not`, parentheses, search identifiers and
//! `1 of` / `any of` / `all of` over identifier patterns or `them`.
//!
//! Precedence, loosest first: `or`, `and`, `not`. Keywords are matched case-insensitively.
//! Aggregations after `|` (Sigma 1.x) and `N of` with N other than 1 are refused.

/// Deepest nesting of parentheses and `not` accepted.
const MAX_DEPTH: usize = 64;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Ident(String),
    /// `1 of` (`all == false`) or `all of` the identifiers matching `pattern` (`None`: `them`).
    Of {
        all: bool,
        pattern: Option<String>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = ExprParser { tokens, pos: 0, depth: 0 };
    let expr = p.or()?;
    match p.tokens.get(p.pos) {
        None => Ok(expr),
        Some(t) => Err(format!("condition `{text}`: unexpected `{t}`")),
    }
}

/// Does identifier `name` match the `of` pattern `pattern` (`*` = any run of characters)?
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*` at all
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                tokens.push(c.to_string());
            }
            '|' => return Err("aggregation in condition (`| ...`, Sigma 1.x) is not supported".into()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    Ok(tokens)
}

struct ExprParser {
    tokens: Vec<String>,
    pos: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.eq_ignore_ascii_case(keyword))
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.peek_keyword("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.not()?];
        while self.peek_keyword("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek_keyword("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("condition nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(token) = self.next() else {
            return Err("condition ends where an identifier was expected".into());
        };
        match token.to_ascii_lowercase().as_str() {
            "(" => {
                self.enter()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.next().as_deref() {
                    Some(")") => Ok(inner),
                    _ => Err("condition has an unclosed `(`".into()),
                }
            }
            ")" => Err("condition has an unexpected `)`".into()),
            "and" | "or" | "of" | "them" => Err(format!("condition has `{token}` where an identifier was expected")),
            quantifier if self.peek_keyword("of") => {
                let all = match quantifier {
                    "1" | "any" => false,
                    "all" => true,
                    n if n.parse::<u64>().is_ok() => {
                        return Err(format!("`{n} of` is not supported (only `1 of`, `any of` and `all of`)"));
                    }
                    _ => return Err(format!("condition has `{token} of`; expected `1 of` or `all of`")),
                };
                self.pos += 1;
                let pattern = match self.next() {
                    Some(t) if t.eq_ignore_ascii_case("them") => None,
                    Some(t) if t != "(" && t != ")" => Some(t),
                    _ => return Err(format!("condition has `{token} of` without a pattern")),
                };
                Ok(Expr::Of { all, pattern })
            }
            _ => Ok(Expr::Ident(token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Expr {
        Expr::Ident(s.into())
    }

    #[test]
    fn precedence_is_or_and_not() {
        let e = parse("a or b and not c").unwrap();
        assert_eq!(e, Expr::Or(vec![id("a"), Expr::And(vec![id("b"), Expr::Not(Box::new(id("c")))])]));
        let e = parse("(a or b) and c").unwrap();
        assert_eq!(e, Expr::And(vec![Expr::Or(vec![id("a"), id("b")]), id("c")]));
    }

    #[test]
    fn quantifiers() {
        assert_eq!(parse("1 of sel_*").unwrap(), Expr::Of { all: false, pattern: Some("sel_*".into()) });
        assert_eq!(parse("any of them").unwrap(), Expr::Of { all: false, pattern: None });
        assert_eq!(parse("all of them").unwrap(), Expr::Of { all: true, pattern: None });
        assert!(parse("2 of sel*").unwrap_err().contains("`2 of`"));
        assert!(parse("sel | count() > 5").unwrap_err().contains("aggregation"));
    }

    #[test]
    fn malformed_conditions_are_errors() {
        for bad in ["", "(a", "a)", "a and", "not", "1 of", "a b"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("{}a{}", "(".repeat(100), ")".repeat(100))).is_err());
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("selection_*", "selection_a"));
        assert!(pattern_matches("selection*", "selection"));
        assert!(!pattern_matches("selection_*", "selection"));
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(!pattern_matches("a*b*c", "axxc"));
        assert!(pattern_matches("filter", "filter"));
        assert!(!pattern_matches("filter", "filter_x"));
        assert!(!pattern_matches("ab*ba", "aba"));
    }
}
