//! Imports point one way: every file under `src/` is read, the modules it names are collected
//! (`use` paths, and `crate::`, `super::` and child-module paths in code), and any loop between
//! modules fails the test, naming the modules and where each one names the next. Two graphs are
//! checked: the top-level modules, and the same with `actors`, `adapters`, `http`, `graphql`,
//! `domain` and `error` split into their second level.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Top-level modules whose second level are nodes of their own.
const SPLIT: &[&str] = &["actors", "adapters", "http", "graphql", "domain", "error"];

/// A path named in a file, resolved from the crate root, and the line naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    path: Vec<String>,
    line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Punct(&'static str),
}

/// Source with comments, string and character literals blanked out, newlines kept.
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char(chars.get(i.wrapping_sub(1))) {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += hashes + 2;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // Quote, backslash, the escaped character, then up to the closing quote.
            i += 3;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Identifiers and the punctuation paths are made of, each with its line.
fn tokens(source: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while ident_char(chars.get(i)) {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::Punct("::"), line));
            i += 2;
        } else {
            let punct = match c {
                '{' => Some("{"),
                '}' => Some("}"),
                ',' => Some(","),
                ';' => Some(";"),
                '*' => Some("*"),
                '$' => Some("$"),
                '.' => Some("."),
                c if c.is_whitespace() => None,
                _ => Some("other"),
            };
            if let Some(p) = punct {
                out.push((Token::Punct(p), line));
            }
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&(Token, usize)>) -> Option<&str> {
    match t {
        Some((Token::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn punct(t: Option<&(Token, usize)>, p: &str) -> bool {
    matches!(t, Some((Token::Punct(q), _)) if *q == p)
}

/// The paths a `use` tree starting at `tokens[*i]` names, each as written.
fn use_tree(tokens: &[(Token, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    if punct(tokens.get(*i), "::") {
        *i += 1;
        path.push(String::new()); // `::name`: another crate
    }
    loop {
        if punct(tokens.get(*i), "{") {
            *i += 1;
            while !punct(tokens.get(*i), "}") && *i < tokens.len() {
                use_tree(tokens, i, &path, out);
                if punct(tokens.get(*i), ",") {
                    *i += 1;
                }
            }
            *i += 1;
            return;
        }
        if punct(tokens.get(*i), "*") {
            *i += 1;
            out.push(path);
            return;
        }
        match ident(tokens.get(*i)) {
            Some("self") if !path.is_empty() && !prefix.is_empty() && path.len() == prefix.len() => *i += 1,
            Some(name) => {
                path.push(name.to_owned());
                *i += 1;
            }
            None => {
                out.push(path);
                return;
            }
        }
        if punct(tokens.get(*i), "::") {
            *i += 1;
            continue;
        }
        if ident(tokens.get(*i)) == Some("as") {
            *i += 2;
        }
        out.push(path);
        return;
    }
}

/// `path` as written in module `module`, from the crate root; `None` for another crate's.
fn resolve(module: &[String], children: &BTreeSet<String>, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "super" | "self" => {
            let mut base = module.to_vec();
            let mut rest = path;
            if first == "self" {
                rest = &path[1..];
            }
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        name if children.contains(name) => {
            let mut base = module.to_vec();
            base.extend(path.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

/// Every path the source of module `file_module` names, resolved from the crate root.
fn named(file_module: &[String], source: &str) -> Vec<Named> {
    let tokens = tokens(&strip(source));
    // Modules declared in this file and inline modules open at the current position.
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for (k, window) in tokens.windows(3).enumerate() {
        if ident(window.first()) == Some("mod") {
            if let Some(name) = ident(window.get(1)) {
                let mut scope = file_module.to_vec();
                scope.extend(inline_scope(&tokens[..k]));
                children.entry(scope).or_default().insert(name.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let module: Vec<String> =
            file_module.iter().cloned().chain(inline.iter().map(|(name, _)| name.clone())).collect();
        let empty = BTreeSet::new();
        let kids = children.get(&module).unwrap_or(&empty);
        let line = tokens[i].1;
        let previous = i.checked_sub(1).and_then(|p| tokens.get(p));
        match &tokens[i].0 {
            Token::Punct("{") => {
                depth += 1;
                i += 1;
            }
            Token::Punct("}") => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
                i += 1;
            }
            Token::Ident(word) if word == "mod" => match (ident(tokens.get(i + 1)), punct(tokens.get(i + 2), "{")) {
                (Some(name), true) => {
                    depth += 1;
                    inline.push((name.to_owned(), depth));
                    i += 3;
                }
                _ => i += 1,
            },
            Token::Ident(word) if word == "use" => {
                i += 1;
                let mut paths = Vec::new();
                use_tree(&tokens, &mut i, &[], &mut paths);
                for path in paths {
                    if let Some(path) = resolve(&module, kids, &path) {
                        out.push(Named { path, line });
                    }
                }
            }
            Token::Ident(word)
                if (word == "crate" || word == "super" || kids.contains(word))
                    && punct(tokens.get(i + 1), "::")
                    && !punct(previous, "::")
                    && !punct(previous, "$")
                    && !punct(previous, ".") =>
            {
                let mut path = vec![word.clone()];
                i += 1;
                while punct(tokens.get(i), "::") {
                    match ident(tokens.get(i + 1)) {
                        Some(name) => {
                            path.push(name.to_owned());
                            i += 2;
                        }
                        None => break,
                    }
                }
                if let Some(path) = resolve(&module, kids, &path) {
                    out.push(Named { path, line });
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The inline modules open after `tokens`.
fn inline_scope(tokens: &[(Token, usize)]) -> Vec<String> {
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        if ident(tokens.get(i)) == Some("mod") && punct(tokens.get(i + 2), "{") {
            if let Some(name) = ident(tokens.get(i + 1)) {
                depth += 1;
                inline.push((name.to_owned(), depth));
                i += 3;
                continue;
            }
        }
        if punct(tokens.get(i), "{") {
            depth += 1;
        } else if punct(tokens.get(i), "}") {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d > depth) {
                inline.pop();
            }
        }
        i += 1;
    }
    inline.into_iter().map(|(name, _)| name).collect()
}

/// The module a file under `src/` is: `src/http/mod.rs` is `http`, `src/http/ask.rs` `http::ask`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a module belongs to: its top-level module, or the second level under [`SPLIT`].
fn node(module: &[String], split: bool) -> Option<String> {
    let first = module.first()?;
    match module.get(1) {
        Some(second) if split && SPLIT.contains(&first.as_str()) => Some(format!("{first}::{second}")),
        _ => Some(first.clone()),
    }
}

/// Edges between nodes, each with the first place it is seen (`file:line`).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The module graph of the crate under `root` (`src/`, the binary's `main.rs` left out).
fn graph(root: &Path, split: bool) -> Graph {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(root, f)).collect();
    let mut graph = Graph::new();
    for file in files.iter().filter(|f| f.strip_prefix(root).is_ok_and(|p| p != Path::new("main.rs"))) {
        let module = module_of(root, file);
        let Some(from) = node(&module, split) else { continue };
        let source = fs::read_to_string(file).unwrap_or_default();
        for Named { path, line } in named(&module, &source) {
            // The longest known module the path goes through.
            let target = (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| modules.contains(m));
            let Some(to) = target.and_then(|m| node(&m, split)) else { continue };
            if to != from {
                let at = format!("src/{}:{line}", file.strip_prefix(root).unwrap_or(file).display());
                graph.entry(from.clone()).or_default().entry(to).or_insert(at);
            }
        }
    }
    graph
}

/// Strongly connected groups of more than one node (Tarjan).
fn loops(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// One cycle through a group's first node, each step with where it is named.
fn describe(graph: &Graph, group: &[String]) -> String {
    let start = &group[0];
    let members: BTreeSet<&String> = group.iter().collect();
    // Breadth first from the start back to it, inside the group.
    let mut previous: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut end = None;
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()).filter(|w| members.contains(w)) {
            if w == start {
                end = Some(v);
                queue.clear();
                break;
            }
            if !previous.contains_key(w) {
                previous.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut path = vec![start];
    let mut at = end;
    while let Some(v) = at.filter(|v| *v != start) {
        path.push(v);
        at = previous.get(v).copied();
    }
    path.push(start);
    let last = path.len() - 1;
    path[1..last].reverse();
    let steps: Vec<String> =
        path.windows(2).map(|w| format!("  {} -> {} ({})", w[0], w[1], graph[w[0]][w[1]])).collect();
    format!("{}\n{}", group.join(" <-> "), steps.join("\n"))
}

#[test]
fn no_module_names_one_that_names_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut failures = Vec::new();
    for split in [false, true] {
        let graph = graph(&root, split);
        assert!(graph.len() > 5, "no imports found under {}", root.display());
        failures.extend(loops(&graph).iter().map(|group| describe(&graph, group)));
    }
    assert!(failures.is_empty(), "import loops:\n{}", failures.join("\n"));
}

#[test]
fn use_trees_comments_and_relative_paths_resolve() {
    let source = r#"
        //! Not `use crate::b;` in a comment.
        mod child;
        use std::fmt;
        use super::{sibling::{self, Thing}, other as renamed};
        use crate::{a::b::{c, d::*}, e};
        use child::Inner;
        const TEXT: &str = "crate::f::g";
        fn f() { let _ = crate::h::i(); let _ = child::j(); x.child::<u8>(); }
        fn g<'a>(s: &'a str) -> (char, char) { let _ = $crate::m::n; ('\'', '"') }
        fn k() { crate::k::l(); }
        #[cfg(test)]
        mod tests {
            use super::*;
        }
    "#;
    let module: Vec<String> = vec!["top".into(), "here".into()];
    let found: Vec<String> = named(&module, source).into_iter().map(|n| n.path.join("::")).collect();
    assert_eq!(
        found,
        [
            "top::sibling",
            "top::sibling::Thing",
            "top::other",
            "a::b::c",
            "a::b::d",
            "e",
            "top::here::child::Inner",
            "h::i",
            "top::here::child::j",
            "k::l",
            "top::here",
        ]
    );
}

#[test]
fn a_loop_is_found_and_named() {
    let edge = |to: &str| (to.to_string(), "src/x.rs:1".to_string());
    let graph: Graph = BTreeMap::from([
        ("a".into(), BTreeMap::from([edge("b")])),
        ("b".into(), BTreeMap::from([edge("c")])),
        ("c".into(), BTreeMap::from([edge("a"), edge("d")])),
        ("d".into(), BTreeMap::new()),
    ]);
    let found = loops(&graph);
    assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(
        describe(&graph, &found[0]),
        "a <-> b <-> c\n  a -> b (src/x.rs:1)\n  b -> c (src/x.rs:1)\n  c -> a (src/x.rs:1)"
    );
}
