//! A YAML tree with line numbers, built from yaml-rust2's event parser.
//!
//! yaml-rust2's own `Yaml` tree drops positions and copies every alias in full (so a "billion
//! laughs" document exhausts memory). This loader keeps each node's line for error messages,
//! bounds the nesting depth and the node count (aliases included), and rejects duplicate keys.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// Deepest nesting accepted; Sigma rules use about four levels.
const MAX_DEPTH: usize = 64;
/// Most nodes accepted in one file, counting every node an alias repeats.
const MAX_NODES: usize = 200_000;

/// A YAML node and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: usize,
}

/// A YAML value after scalar resolution (YAML 1.2 core schema, as yaml-rust2 resolves it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// A float, kept as written.
    Real(String),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

/// Why a document could not be loaded, and where (1-based line, 1-based column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Node {
    /// The value under `key` when this is a map with a string key `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar's text as Sigma compares it: numbers and booleans in their string form.
    /// `None` for null and for collections.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Real(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Real(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

/// Loads every document of `text`.
pub(crate) fn load(text: &str) -> Result<Vec<Node>, LoadError> {
    let mut loader = Loader::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| LoadError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        // yaml-rust2 counts lines from 1 and columns from 0.
        let (line, column) = (mark.line(), mark.col() + 1);
        let at = |message: String| LoadError { line, column, message };
        match event {
            Event::StreamEnd => return Ok(loader.docs),
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
            Event::Alias(id) => {
                let (node, size) = loader.anchors.get(&id).cloned().ok_or_else(|| at("unknown alias".into()))?;
                loader.count(size).map_err(at)?;
                loader.push(node).map_err(at)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                loader.count(1).map_err(at)?;
                let node = Node { value: scalar(text, style, tag.as_ref()), line };
                if anchor > 0 {
                    loader.anchors.insert(anchor, (node.clone(), 1));
                }
                loader.push(node).map_err(at)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if loader.stack.len() >= MAX_DEPTH {
                    return Err(at(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                loader.count(1).map_err(at)?;
                let value = match event {
                    Event::SequenceStart(..) => Value::Seq(Vec::new()),
                    _ => Value::Map(Vec::new()),
                };
                let first_node = loader.nodes;
                loader.stack.push(Frame { node: Node { value, line }, key: None, anchor, first_node });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = loader.stack.pop().ok_or_else(|| at("unbalanced collection end".into()))?;
                if frame.key.is_some() {
                    return Err(at("mapping key without a value".into()));
                }
                if frame.anchor > 0 {
                    let size = loader.nodes - frame.first_node + 1;
                    loader.anchors.insert(frame.anchor, (frame.node.clone(), size));
                }
                loader.push(frame.node).map_err(at)?;
            }
        }
    }
}

#[derive(Default)]
struct Loader {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    /// Anchored nodes with the number of nodes each one stands for.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

/// A collection being filled; `key` holds a map's key until its value arrives.
struct Frame {
    node: Node,
    key: Option<Node>,
    anchor: usize,
    first_node: usize,
}

impl Loader {
    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} nodes (after expanding aliases)"));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), String> {
        let Some(frame) = self.stack.last_mut() else {
            self.docs.push(node);
            return Ok(());
        };
        match (&mut frame.node.value, frame.key.take()) {
            (Value::Seq(items), _) => items.push(node),
            (Value::Map(_), None) => {
                if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
                    return Err("a mapping key must be a scalar".into());
                }
                frame.key = Some(node);
            }
            (Value::Map(entries), Some(key)) => {
                if entries.iter().any(|(k, _)| k.value == key.value) {
                    let name = key.scalar_text().unwrap_or_else(|| "null".into());
                    return Err(format!("duplicate key `{name}` in mapping"));
                }
                entries.push((key, node));
            }
            // A frame only ever holds a sequence or a map (see `load`).
            _ => return Err("internal: scalar frame".into()),
        }
        Ok(())
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let is_str_tag = tag.is_some_and(|t| t.suffix == "str");
    if style != TScalarStyle::Plain || is_str_tag {
        return Value::Str(text);
    }
    match yaml_rust2::Yaml::from_str(&text) {
        yaml_rust2::Yaml::Null => Value::Null,
        yaml_rust2::Yaml::Boolean(b) => Value::Bool(b),
        yaml_rust2::Yaml::Integer(i) => Value::Int(i),
        yaml_rust2::Yaml::Real(r) => Value::Real(r),
        _ => Value::Str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let mut docs = load(text).unwrap();
        assert_eq!(docs.len(), 1);
        docs.pop().unwrap()
    }

    #[test]
    fn keeps_lines_order_and_scalar_types() {
        let doc = one("a: 1\nb:\n  - 'x'\n  - ~\n  - true\n  - 1.50\nc: yes\n");
        let Value::Map(entries) = &doc.value else { panic!("not a map") };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(doc.get("a").unwrap().value, Value::Int(1));
        let b = doc.get("b").unwrap();
        assert_eq!(b.line, 3);
        let Value::Seq(items) = &b.value else { panic!("not a list") };
        let texts: Vec<_> = items.iter().map(Node::scalar_text).collect();
        assert_eq!(texts, [Some("x".into()), None, Some("true".into()), Some("1.50".into())]);
        assert_eq!(doc.get("c").unwrap().as_str(), Some("yes"));
    }

    #[test]
    fn rejects_duplicate_keys_with_line() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate key `a`"), "{err:?}");
    }

    #[test]
    fn bounds_alias_expansion() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("nodes"), "{err:?}");
    }

    #[test]
    fn bounds_depth() {
        let text = format!("{}x\n", "- ".repeat(1000));
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{err:?}");
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let doc = one("a: &x {k: v}\nb: *x\n");
        assert_eq!(doc.get("a").unwrap().value, doc.get("b").unwrap().value);
    }
}
