//! Operation limits, checked before anything is executed: the document's tokens are counted
//! before it is parsed, then every operation of the parsed document is measured (depth, height,
//! aliases, root fields) the way Apollo Router measures them, fragments expanded at each use.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use serde_json::{Map, Value};

use crate::{
    config::GraphqlSettings,
    error::{Coded, ErrorCode},
};

/// Deepest bracket nesting a document may have before it is parsed: the parser refuses deeper
/// documents itself, but only after recursing into them.
pub const MAX_NESTING: usize = 64;

/// The limits of one operation.
#[derive(Debug, Clone, Copy)]
pub struct OperationLimits {
    /// Deepest field nesting.
    pub max_depth: usize,
    /// Most fields.
    pub max_height: usize,
    /// Most aliases.
    pub max_aliases: usize,
    /// Most root fields.
    pub max_root_fields: usize,
    /// Most tokens in the document.
    pub max_tokens: usize,
}

impl From<&GraphqlSettings> for OperationLimits {
    fn from(s: &GraphqlSettings) -> Self {
        Self {
            max_depth: s.max_depth,
            max_height: s.max_height,
            max_aliases: s.max_aliases,
            max_root_fields: s.max_root_fields,
            max_tokens: s.max_tokens,
        }
    }
}

/// An operation over one of its limits: refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operation exceeds `{limit}` ({max}): {what}")]
pub struct LimitExceeded {
    /// The limit: `max_depth`, `max_height`, `max_aliases`, `max_root_fields`, `max_tokens` or
    /// `max_nesting`.
    pub limit: &'static str,
    /// Its value.
    pub max: usize,
    /// What was found.
    pub what: String,
}

impl Coded for LimitExceeded {
    fn code(&self) -> ErrorCode {
        ErrorCode::OperationLimitExceeded
    }

    /// The limit and its value.
    fn extensions(&self) -> Map<String, Value> {
        Map::from_iter([("limit".to_string(), Value::from(self.limit)), ("max".to_string(), Value::from(self.max))])
    }
}

/// What a document's lexer pass found, stopped early once over the token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Tokens counted (at most one more than the limit).
    pub tokens: usize,
    /// Deepest nesting of `{`, `[` and `(`.
    pub nesting: usize,
}

/// Count the lexical tokens of a GraphQL document (names, numbers, strings, punctuators; not
/// whitespace, commas or comments), stopping once past `max`.
pub fn scan(source: &str, max: usize) -> Scan {
    let bytes = source.as_bytes();
    let (mut i, mut tokens, mut depth, mut nesting) = (0, 0, 0usize, 0);
    while i < bytes.len() && tokens <= max {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            // The byte order mark is ignored like white space.
            0xEF if bytes[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                i += 3;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                nesting = nesting.max(depth);
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // Any other punctuator, or a byte the parser will refuse: one token each.
            _ => i += 1,
        }
        tokens += 1;
    }
    Scan { tokens, nesting }
}

/// What an operation measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// Deepest field nesting (a root field is at depth 1).
    pub depth: usize,
    /// Fields: each distinct response name of a selection set once, each fragment use again.
    pub height: usize,
    /// Aliased fields.
    pub aliases: usize,
    /// Fields at the top of the measured selection set, through fragments.
    pub root_fields: usize,
}

impl Measured {
    fn add(&mut self, nested: Measured) {
        self.height = self.height.saturating_add(nested.height);
        self.aliases = self.aliases.saturating_add(nested.aliases);
    }
}

/// Memo of fragments already measured; `None` while one is being measured (a cycle, which
/// validation refuses afterwards, counts as nothing).
type Fragments<'a> = HashMap<&'a str, Option<Measured>>;

fn measure_set<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, memo: &mut Fragments<'a>) -> Measured {
    let mut measured = Measured::default();
    let mut seen = std::collections::HashSet::new();
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let nested = measure_set(doc, &field.selection_set.node, memo);
                measured.depth = measured.depth.max(nested.depth.saturating_add(1));
                measured.add(nested);
                if field.alias.is_some() {
                    measured.aliases = measured.aliases.saturating_add(1);
                }
                if seen.insert(field.response_key().node.as_str()) {
                    measured.height = measured.height.saturating_add(1);
                    measured.root_fields = measured.root_fields.saturating_add(1);
                }
            }
            Selection::InlineFragment(inline) => {
                let nested = measure_set(doc, &inline.node.selection_set.node, memo);
                measured.depth = measured.depth.max(nested.depth);
                measured.add(nested);
                measured.root_fields = measured.root_fields.saturating_add(nested.root_fields);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                let nested = match memo.get(name) {
                    Some(known) => known.unwrap_or_default(),
                    None => match doc.fragments.get(name) {
                        Some(fragment) => {
                            memo.insert(name, None);
                            let nested = measure_set(doc, &fragment.node.selection_set.node, memo);
                            memo.insert(name, Some(nested));
                            nested
                        }
                        // Unknown fragments are refused by validation.
                        None => Measured::default(),
                    },
                };
                measured.depth = measured.depth.max(nested.depth);
                measured.add(nested);
                measured.root_fields = measured.root_fields.saturating_add(nested.root_fields);
            }
        }
    }
    measured
}

/// The largest measure of each kind over the document's operations.
pub fn measure(doc: &ExecutableDocument) -> Measured {
    let mut memo = Fragments::new();
    doc.operations.iter().fold(Measured::default(), |most, (_, operation)| {
        let m = measure_set(doc, &operation.node.selection_set.node, &mut memo);
        Measured {
            depth: most.depth.max(m.depth),
            height: most.height.max(m.height),
            aliases: most.aliases.max(m.aliases),
            root_fields: most.root_fields.max(m.root_fields),
        }
    })
}

impl OperationLimits {
    /// Refuse a request whose document is over a limit. The parsed document stays in the
    /// request, so it is not parsed twice; a document that does not parse is left to the
    /// executor, which reports why.
    pub fn check(&self, request: &mut async_graphql::Request) -> Result<(), LimitExceeded> {
        let scan = scan(&request.query, self.max_tokens);
        if scan.tokens > self.max_tokens {
            return Err(LimitExceeded {
                limit: "max_tokens",
                max: self.max_tokens,
                what: format!("more than {} tokens", self.max_tokens),
            });
        }
        if scan.nesting > MAX_NESTING {
            return Err(LimitExceeded {
                limit: "max_nesting",
                max: MAX_NESTING,
                what: format!("brackets nested {} deep", scan.nesting),
            });
        }
        let Ok(doc) = request.parsed_query() else { return Ok(()) };
        let m = measure(doc);
        for (limit, found, max, what) in [
            ("max_depth", m.depth, self.max_depth, "fields nested"),
            ("max_height", m.height, self.max_height, "fields"),
            ("max_aliases", m.aliases, self.max_aliases, "aliases"),
            ("max_root_fields", m.root_fields, self.max_root_fields, "root fields"),
        ] {
            if found > max {
                let what =
                    if limit == "max_depth" { format!("{what} {found} deep") } else { format!("{found} {what}") };
                return Err(LimitExceeded { limit, max, what });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn measured(query: &str) -> Measured {
        measure(&parse_query(query).unwrap())
    }

    #[test]
    fn depth_height_aliases_and_root_fields_are_measured_through_fragments() {
        let m = measured("{ a b { c d { e } } a }");
        assert_eq!(m, Measured { depth: 3, height: 5, aliases: 0, root_fields: 2 });
        let m = measured("{ x: a y: a b { ...F } } fragment F on B { c d: e ... on B { f g { h } } }");
        assert_eq!((m.depth, m.aliases, m.root_fields), (3, 3, 3));
        assert_eq!(m.height, 3 + 5);
        // Each use of a fragment counts again: nested fragments multiply.
        let m = measured("{ a { ...F } b { ...F } } fragment F on T { x: c y: c }");
        assert_eq!((m.height, m.aliases), (2 + 4, 4));
        // Fragments at the root add root fields.
        let m = measured(
            "mutation { ... on Mutation { t1: transfer t2: transfer } ...M } fragment M on Mutation { t3: transfer }",
        );
        assert_eq!((m.root_fields, m.aliases, m.depth), (3, 3, 1));
    }

    #[test]
    fn a_fragment_bomb_saturates_instead_of_exploding() {
        let mut query = String::from("{ ...F0 }");
        for i in 0..80 {
            query.push_str(&format!(" fragment F{i} on Q {{ a: x ...F{n} b: y ...F{n} }}", n = i + 1));
        }
        query.push_str(" fragment F80 on Q { z }");
        let m = measured(&query);
        assert_eq!(m.aliases, usize::MAX);
        assert_eq!(m.depth, 1);
    }

    #[test]
    fn cyclic_fragments_end() {
        let m = measured("{ ...A } fragment A on Q { a ...B } fragment B on Q { b ...A }");
        assert_eq!(m.root_fields, 2);
    }

    #[test]
    fn tokens_are_names_values_and_punctuators_only() {
        let q =
            "query Q($a: Int = -1.5e3) { # comment { [ (\n f(s: \"x, y { \\\" \", b: \"\"\"{ \\\"\"\" }\"\"\") ...F }";
        // query Q ( $ a : Int = -1.5e3 ) { f ( s : "…" b : """…""" ) ... F }
        assert_eq!(scan(q, 100), Scan { tokens: 23, nesting: 2 });
        assert_eq!(scan("{ a, b,,, c }\u{feff}", 100).tokens, 5);
        assert_eq!(scan(&"{a".repeat(10_000), 50).tokens, 51, "counting stops past the limit");
        assert_eq!(scan("[[[[[]]]]]", 100).nesting, 5);
    }

    /// The introspection query GraphiQL sends (graphql-js, every option on).
    const INTROSPECTION: &str = r#"
        query IntrospectionQuery {
          __schema {
            description
            queryType { name } mutationType { name } subscriptionType { name }
            types { ...FullType }
            directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
          }
        }
        fragment FullType on __Type {
          kind name description specifiedByURL isOneOf
          fields(includeDeprecated: true) {
            name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef }
            isDeprecated deprecationReason
          }
          inputFields(includeDeprecated: true) { ...InputValue }
          interfaces { ...TypeRef }
          enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
          possibleTypes { ...TypeRef }
        }
        fragment InputValue on __InputValue {
          name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
        }
        fragment TypeRef on __Type {
          kind name
          ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
            ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
        }
    "#;

    #[test]
    fn the_default_limits_let_graphiql_introspect_the_schema() {
        let defaults = OperationLimits::from(&GraphqlSettings::default());
        let m = measured(INTROSPECTION);
        assert!(m.depth <= defaults.max_depth && m.height <= defaults.max_height, "{m:?}");
        assert!(scan(INTROSPECTION, defaults.max_tokens).tokens <= defaults.max_tokens);
        assert_eq!(defaults.check(&mut async_graphql::Request::new(INTROSPECTION)), Ok(()));
    }

    #[test]
    fn check_names_the_first_limit_exceeded_and_keeps_the_parsed_document() {
        let limits =
            OperationLimits { max_depth: 2, max_height: 10, max_aliases: 1, max_root_fields: 3, max_tokens: 40 };
        let refused = |q: &str| limits.check(&mut async_graphql::Request::new(q)).err().map(|e| e.limit);
        assert_eq!(refused("{ a { b } }"), None);
        assert_eq!(refused("{ a { b { c } } }"), Some("max_depth"));
        assert_eq!(refused("{ x: a y: a }"), Some("max_aliases"));
        assert_eq!(refused("{ a b c d }"), Some("max_root_fields"));
        assert_eq!(refused("{ a { b c d e f g h i j k l } }"), Some("max_height"));
        assert_eq!(refused(&format!("{{ {} }}", "a ".repeat(40))), Some("max_tokens"));
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(65), "]".repeat(65));
        let limits = OperationLimits { max_tokens: 1000, ..limits };
        assert_eq!(limits.check(&mut async_graphql::Request::new(deep)).unwrap_err().limit, "max_nesting");
        assert_eq!(limits.check(&mut async_graphql::Request::new("{ not valid")), Ok(()), "left to the executor");
    }
}
