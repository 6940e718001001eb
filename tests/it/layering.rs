//! The dependency rule of ARCHITECTURE.md, checked on the source: no import
//! cycle between rooms (each top-level module under `src/` one room) and
//! none between files. A path in a file's code (`crate::…`, `super::…`,
//! `self::…`, or one that starts with a child module) is an edge to the
//! longest module with a file that it reaches; a name that module only
//! re-exports is followed to where it comes from. Test modules, comments
//! and the contents of literals do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::sync::LazyLock;

use regex::Regex;

// Compiled once: the check reads every file of the crate.
static TESTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([\w ]+\))?\s+)?mod\s+\w+\s*\{").unwrap()
});
static BRACES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^((?:\w+::)*)\{([^{}]*)\}").unwrap());
static PLAIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w:]*").unwrap());
static REEXPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"pub\s+use\s+([\w:]+)::(?:\{([^}]*)\}|(\w+))").unwrap());
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(crate|super|self|[a-z_][a-z0-9_]*)::((?:\w+::)*(?:\{[^{}]*\}|\w+))").unwrap()
});

type Module = Vec<String>;

/// The modules of the crate whose root is `src`, each with its file.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Module, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            // The binary's root imports the library by its crate name.
            if module.is_empty() && path.file_name().is_some_and(|n| n == "main.rs") {
                continue;
            }
            out.insert(module, path);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// A file's code without its comments, the contents of its string and
/// character literals, and its test modules (`#[cfg(test)] mod … { … }`).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = without_literals(&text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(m) = TESTS.find(rest) {
        out.push_str(&rest[..m.start()]);
        // Skip to the brace that closes the module's.
        let mut depth = 1;
        let body = &rest[m.end()..];
        let close = body
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(body.len(), |(i, _)| i + 1);
        rest = &body[close..];
    }
    out.push_str(rest);
    out
}

/// `text` with comments dropped and literals emptied (`""`, `' '`), so that
/// neither a path in a string nor a brace in a char counts.
fn without_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (at(i + 1, "\"") || at(i + 1, "#"))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let end = format!("\"{}", "#".repeat(hashes));
            i += 2 + hashes;
            while i < chars.len() && !at(i, &end) {
                i += 1;
            }
            i += end.chars().count();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && chars.get(i + 1) == Some(&'\\') {
            // '\n', '\'', '\u{7f}'
            i += 3;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `a::{b, c::D}` → `a::b`, `a::c::D` (one level of braces, as use lists).
fn expand(rest: &str) -> Vec<String> {
    match BRACES.captures(rest) {
        Some(c) => c[2]
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| format!("{}{i}", &c[1]))
            .collect(),
        None => {
            vec![PLAIN.find(rest).map_or("", |m| m.as_str()).to_string()]
        }
    }
}

/// The module (with a file) that `segs` reaches, and the name taken there.
fn resolve(files: &BTreeMap<Module, PathBuf>, segs: &[String]) -> Option<(Module, Option<String>)> {
    (0..=segs.len()).rev().find_map(|k| {
        files
            .contains_key(&segs[..k])
            .then(|| (segs[..k].to_vec(), segs.get(k).cloned()))
    })
}

/// The import graph between the modules of `src`, merged into their first
/// `depth` path components when a depth is given.
fn graph(src: &Path, depth: Option<usize>) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = modules(src);
    let codes: BTreeMap<&Module, String> = files.iter().map(|(m, p)| (m, code(p))).collect();
    let mut reexports: BTreeMap<Module, BTreeMap<String, Module>> = BTreeMap::new();
    for (module, text) in &codes {
        for c in REEXPORT.captures_iter(text) {
            let base: Vec<String> = c[1].split("::").map(String::from).collect();
            let base = match base[0].as_str() {
                "crate" => base[1..].to_vec(),
                "self" => [module.as_slice(), &base[1..]].concat(),
                _ => [module.as_slice(), &base].concat(),
            };
            let names = c.get(2).or(c.get(3)).unwrap().as_str();
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let name = name.rsplit(" as ").next().unwrap().trim().to_string();
                reexports
                    .entry((*module).clone())
                    .or_default()
                    .insert(name, base.clone());
            }
        }
    }
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in &codes {
        let module: &Module = module;
        edges.entry(module.clone()).or_default();
        let parent = &module[..module.len().saturating_sub(1)];
        let children: BTreeSet<&String> = files
            .keys()
            .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
            .map(|k| &k[module.len()])
            .collect();
        for c in PATH.captures_iter(text) {
            let head = &c[1];
            let base: Module = match head {
                "crate" => vec![],
                "super" => parent.to_vec(),
                "self" => module.clone(),
                h if children.contains(&h.to_string()) => {
                    [module.as_slice(), &[h.to_string()]].concat()
                }
                _ => continue,
            };
            for p in expand(&c[2]) {
                let mut base = base.clone();
                let mut p = p.as_str();
                while let Some(rest) = p.strip_prefix("super::") {
                    p = rest;
                    base.pop();
                }
                let segs: Vec<String> = base
                    .into_iter()
                    .chain(p.split("::").filter(|s| !s.is_empty()).map(String::from))
                    .collect();
                let mut reached = resolve(&files, &segs);
                for _ in 0..5 {
                    let Some((target, Some(name))) = &reached else {
                        break;
                    };
                    let Some(from) = reexports.get(target).and_then(|r| r.get(name)) else {
                        break;
                    };
                    let segs = [from.as_slice(), std::slice::from_ref(name)].concat();
                    reached = resolve(&files, &segs);
                }
                if let Some((target, _)) = reached
                    && &target != module
                {
                    edges.get_mut(module).unwrap().insert(target);
                }
            }
        }
    }
    let Some(depth) = depth else {
        return edges;
    };
    let cut = |m: &Module| m[..m.len().min(depth)].to_vec();
    let mut merged: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, targets) in edges {
        let key = cut(&module);
        let targets: Vec<Module> = targets.iter().map(cut).filter(|t| *t != key).collect();
        merged.entry(key).or_default().extend(targets);
    }
    merged
}

/// The strongly connected sets of two modules or more (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = vec![];
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on.remove(w);
                    set.push(name(w));
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.out.push(set);
                }
            }
        }
    }
    fn name(m: &Module) -> String {
        match m.is_empty() {
            true => "crate".into(),
            false => m.join("::"),
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        out: vec![],
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_cycle_between_rooms() {
    assert_no_cycle(
        &graph(&src(), Some(1)),
        "rooms (top-level modules under src/) that import each other in a circle; move the shared type down (ARCHITECTURE.md, the dependency rule)",
    );
}

/// `graph` has no cycle; else fails with `what` and the cycles, one a line.
fn assert_no_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>, what: &str) {
    let found = cycles(graph);
    assert!(
        found.is_empty(),
        "{what}:\n{}",
        found
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_cycle_between_files() {
    assert_no_cycle(
        &graph(&src(), None),
        "modules that import each other in a circle (a child importing its parent's re-exports, say)",
    );
}

/// The check sees what it is for: a room that reaches another through a
/// re-export and a `use` list, and a child that calls its parent.
#[test]
fn the_cycle_check_finds_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a/mod.rs", "mod inner;\npub use inner::Thing;\n");
    write(
        "a/inner.rs",
        "use crate::b::{Other, more::More};\npub struct Thing(Other, More);\n",
    );
    write("b/mod.rs", "pub mod more;\npub struct Other;\n");
    write(
        "b/more.rs",
        "// crate::c::Gone is a comment\npub struct More(crate::a::Thing);\n",
    );
    write(
        "c.rs",
        "pub fn f() { let _ = (\"crate::a::Thing\", r#\"crate::a::Thing\"#, '{'); }\n#[cfg(test)]\nmod tests { use crate::a::Thing; }\n/* crate::a::Thing */\n",
    );
    assert_eq!(
        cycles(&graph(src, Some(1))),
        vec![vec!["a".to_string(), "b".to_string()]]
    );
    assert_eq!(
        cycles(&graph(src, None)),
        vec![vec!["a::inner".to_string(), "b::more".to_string()]]
    );
    write("b/more.rs", "pub struct More;\n");
    assert!(cycles(&graph(src, Some(1))).is_empty());
    // A child that calls a function of its parent, which uses the child.
    write("c.rs", "mod d;\npub fn f() { d::g() }\npub fn h() {}\n");
    write("c/d.rs", "pub fn g() { super::h() }\n");
    assert_eq!(
        cycles(&graph(src, None)),
        vec![vec!["c".to_string(), "c::d".to_string()]]
    );
    assert!(cycles(&graph(src, Some(1))).is_empty());
}
