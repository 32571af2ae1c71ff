//! The manual: one text (`docs/manual.txt`, compiled in) from which the manual page's sections
//! beyond the option list, `--help`'s exit status table and the README's sections on output,
//! exit status, environment and files are all rendered, so that none of them can say
//! something another does not.
//!
//! The text's markup is small on purpose (the manual is prose):
//! - `= MAN TITLE | Readme title [| readme]` starts a section (`readme`: also in the README);
//! - `== Title` a subsection;
//! - an empty line ends a paragraph; lines indented by four spaces are an example, verbatim;
//! - `- term :: text` is a tagged paragraph (`.TP` in roff), a table row in Markdown after
//!   `|| heading | heading`, a list item otherwise; `1. text` a numbered item;
//! - `` `code` `` is bold in roff, `*word*` italic.

use std::io::{self, Write};

/// The text of the manual.
const TEXT: &str = include_str!("../../docs/manual.txt");

/// One block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block<'t> {
    Subsection(&'t str),
    Paragraph(String),
    /// A table heading for the items that follow (Markdown only).
    Heading(&'t str, &'t str),
    Item(String, String),
    Numbered(String),
    Example(Vec<&'t str>),
}

/// A section of the manual.
#[derive(Debug, Clone)]
pub struct Section<'t> {
    /// The manual page's title (`EXIT STATUS`).
    pub title: &'t str,
    /// The README's title (`Exit status`).
    pub readme_title: &'t str,
    /// Whether the README has it.
    pub in_readme: bool,
    blocks: Vec<Block<'t>>,
}

/// The sections of the manual, in order.
pub fn sections() -> Vec<Section<'static>> {
    parse(TEXT)
}

fn parse(text: &str) -> Vec<Section<'_>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    // Ends the paragraph, item or example being read.
    fn flush<'t>(section: Option<&mut Section<'t>>, paragraph: &mut Vec<&'t str>) {
        if let (Some(s), false) = (section, paragraph.is_empty()) {
            s.blocks.push(Block::Paragraph(paragraph.join(" ")));
        }
        paragraph.clear();
    }
    // Empty lines after an example line: kept if the example goes on.
    let mut blanks = 0;
    for line in text.lines() {
        if let Some(example) = line.strip_prefix("    ") {
            flush(sections.last_mut(), &mut paragraph);
            if let Some(s) = sections.last_mut() {
                match s.blocks.last_mut() {
                    Some(Block::Example(lines)) => {
                        lines.extend(std::iter::repeat_n("", blanks));
                        lines.push(example);
                    }
                    _ => s.blocks.push(Block::Example(vec![example])),
                }
            }
            blanks = 0;
            continue;
        }
        if line.trim().is_empty() {
            blanks += 1;
        } else {
            blanks = 0;
        }
        if let Some(title) = line.strip_prefix("= ") {
            flush(sections.last_mut(), &mut paragraph);
            let mut parts = title.split(" | ");
            let man = parts.next().unwrap_or_default();
            sections.push(Section {
                title: man,
                readme_title: parts.next().unwrap_or(man),
                in_readme: parts.next() == Some("readme"),
                blocks: Vec::new(),
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        if let Some(title) = line.strip_prefix("== ") {
            flush(Some(section), &mut paragraph);
            section.blocks.push(Block::Subsection(title));
        } else if let Some(heading) = line.strip_prefix("|| ") {
            flush(Some(section), &mut paragraph);
            let (a, b) = heading.split_once(" | ").unwrap_or((heading, ""));
            section.blocks.push(Block::Heading(a, b));
        } else if let Some((term, text)) =
            line.strip_prefix("- ").and_then(|l| l.split_once(" :: "))
        {
            flush(Some(section), &mut paragraph);
            section
                .blocks
                .push(Block::Item(term.to_string(), text.to_string()));
        } else if let Some(text) = numbered(line) {
            flush(Some(section), &mut paragraph);
            section.blocks.push(Block::Numbered(text.to_string()));
        } else if line.trim().is_empty() {
            flush(Some(section), &mut paragraph);
        } else {
            paragraph.push(line.trim());
        }
    }
    flush(sections.last_mut(), &mut paragraph);
    sections
}

/// The text of `1. text`.
fn numbered(line: &str) -> Option<&str> {
    let (number, text) = line.split_once(". ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// The section titled `title` (its manual page title).
fn section(title: &str) -> Section<'static> {
    sections()
        .into_iter()
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("the manual has a section {title}"))
}

/// The exit statuses and their meaning, as plain text (for `--help`).
pub fn exit_statuses() -> Vec<(String, String)> {
    section("EXIT STATUS")
        .blocks
        .into_iter()
        .filter_map(|b| match b {
            Block::Item(term, text) => Some((plain(&term), plain(&text))),
            _ => None,
        })
        .collect()
}

/// `text` without the markup.
fn plain(text: &str) -> String {
    text.replace(['`', '*'], "")
}

/// The sections of the manual page after OPTIONS, in roff.
pub fn write_roff(out: &mut dyn Write, skip: &[&str]) -> io::Result<()> {
    for s in sections().iter().filter(|s| !skip.contains(&s.title)) {
        write_roff_section(out, s)?;
    }
    Ok(())
}

/// One section in roff.
pub fn write_roff_section(out: &mut dyn Write, s: &Section<'_>) -> io::Result<()> {
    writeln!(out, ".SH \"{}\"", s.title)?;
    let mut first = true;
    let mut number = 0;
    for block in &s.blocks {
        if !matches!(block, Block::Numbered(_)) {
            number = 0;
        }
        match block {
            Block::Subsection(t) => {
                writeln!(out, ".SS \"{}\"", t)?;
                first = true;
                continue;
            }
            Block::Paragraph(p) => {
                if !first {
                    writeln!(out, ".PP")?;
                }
                writeln!(out, "{}", roff_inline(p))?;
            }
            Block::Heading(..) => continue,
            Block::Item(term, text) => {
                writeln!(out, ".TP\n{}\n{}", roff_inline(term), roff_inline(text))?
            }
            Block::Numbered(text) => {
                number += 1;
                writeln!(out, ".IP {number}. 4\n{}", roff_inline(text))?
            }
            Block::Example(lines) => {
                writeln!(out, ".PP\n.RS 4\n.nf")?;
                for line in lines {
                    writeln!(out, "\\&{}", roff_escape(line))?;
                }
                writeln!(out, ".fi\n.RE")?;
            }
        }
        first = false;
    }
    Ok(())
}

/// `text` escaped for roff: `\` and `-`, and a leading `.` or `'` made harmless.
pub fn roff_escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// `text` as a roff text line, `` `code` `` in bold and `*word*` in italics.
fn roff_inline(text: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut italic = false;
    for c in text.chars() {
        match c {
            '`' => {
                code = !code;
                out += if code { "\\fB" } else { "\\fR" };
            }
            '*' if !code => {
                italic = !italic;
                out += if italic { "\\fI" } else { "\\fR" };
            }
            '\\' => out += "\\e",
            '-' => out += "\\-",
            c => out.push(c),
        }
    }
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, "\\&");
    }
    out
}

/// The README's form of the sections it has, each between markers that
/// [`readme_regions`] finds.
pub fn write_markdown(out: &mut dyn Write) -> io::Result<()> {
    for s in sections().iter().filter(|s| s.in_readme) {
        writeln!(out, "{}", markdown_region(s))?;
    }
    Ok(())
}

/// The marker line before a section in the README.
fn begin_marker(title: &str) -> String {
    format!("<!-- manual: {title} (generated from docs/manual.txt: aa --generate markdown) -->")
}

const END_MARKER: &str = "<!-- end of manual section -->";

/// One section in Markdown, with its markers.
pub fn markdown_region(s: &Section<'_>) -> String {
    let mut text = format!("{}\n### {}\n", begin_marker(s.title), s.readme_title);
    let mut in_table = false;
    for block in &s.blocks {
        let row = matches!(block, Block::Item(..)) && in_table;
        if !row && !matches!(block, Block::Numbered(_) | Block::Item(..)) {
            in_table = false;
        }
        match block {
            Block::Subsection(t) => text += &format!("\n#### {t}\n"),
            Block::Paragraph(p) => text += &format!("\n{p}\n"),
            Block::Heading(a, b) => {
                text += &format!("\n| {a} | {b} |\n|---|---|\n");
                in_table = true;
            }
            Block::Item(term, item) if in_table => text += &format!("| {term} | {item} |\n"),
            Block::Item(term, item) => text += &format!("- {term}: {item}\n"),
            Block::Numbered(item) => text += &format!("1. {item}\n"),
            Block::Example(lines) => text += &format!("\n```\n{}\n```\n", lines.join("\n")),
        }
    }
    text + END_MARKER
}

/// The regions of `readme` that [`write_markdown`] writes, by manual page title.
#[cfg(test)]
fn readme_regions(readme: &str) -> Vec<(String, String)> {
    let mut regions = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("<!-- manual: ") {
        let Some(end) = rest[start..].find(END_MARKER) else {
            break;
        };
        let region = &rest[start..start + end + END_MARKER.len()];
        let title = region["<!-- manual: ".len()..]
            .split(" (")
            .next()
            .unwrap_or_default();
        regions.push((title.to_string(), region.to_string()));
        rest = &rest[start + end..];
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_has_the_sections_a_user_needs() {
        let titles: Vec<&str> = sections().iter().map(|s| s.title).collect();
        for title in [
            "DESCRIPTION",
            "ARCHIVE SPECIFICATION FILES",
            "CONFIGURATION",
            "JSON OUTPUT",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "EXAMPLES",
        ] {
            assert!(titles.contains(&title), "{titles:?}");
        }
        let statuses: Vec<String> = exit_statuses().into_iter().map(|(s, _)| s).collect();
        // The statuses `run` exits with (the 128+N of `crate::interrupt` aside).
        let (issues, fatal) = (
            crate::EXIT_ISSUES.to_string(),
            crate::EXIT_FATAL.to_string(),
        );
        assert_eq!(statuses, ["0", &issues, &fatal, "128+N"]);
    }

    /// The `.aa` file's `[Archive]` options as the manual lists them are those the loader
    /// takes.
    #[test]
    fn the_archive_options_listed_are_those_a_spec_takes() {
        let text = section("ARCHIVE SPECIFICATION FILES");
        let listed = text
            .blocks
            .iter()
            .skip_while(|b| **b != Block::Subsection("[Archive] (optional)"))
            .find_map(|b| match b {
                Block::Paragraph(p) => Some(p.clone()),
                _ => None,
            })
            .unwrap();
        let names: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        assert_eq!(names, crate::spec::ARCHIVE_OPTIONS);
    }

    fn workspace_file(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    /// The README's sections on output, exit status, environment and files are the manual's,
    /// word for word: `aa --generate markdown` writes them.
    #[test]
    fn the_readme_has_the_manual_sections_as_generated() {
        let readme = std::fs::read_to_string(workspace_file("README.md")).unwrap();
        let regions = readme_regions(&readme);
        let expected: Vec<(String, String)> = sections()
            .iter()
            .filter(|s| s.in_readme)
            .map(|s| (s.title.to_string(), markdown_region(s)))
            .collect();
        assert!(!expected.is_empty());
        for ((title, region), (expected_title, expected_region)) in regions.iter().zip(&expected) {
            assert_eq!(title, expected_title);
            assert!(
                region == expected_region,
                "README.md's section {title} differs from docs/manual.txt; replace it with the \
                 output of `aa --generate markdown`:\n{expected_region}"
            );
        }
        assert_eq!(regions.len(), expected.len(), "{regions:?}");
    }

    /// Every `AA_*` variable the manual documents is read by the code, and every one the code
    /// reads is documented.
    #[test]
    fn the_environment_section_matches_the_code() {
        let documented: std::collections::BTreeSet<String> = section("ENVIRONMENT")
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Item(term, _) => Some(plain(term)),
                _ => None,
            })
            .filter(|v| v.starts_with("AA_"))
            .collect();
        let mut in_code = std::collections::BTreeSet::new();
        let mut dirs: Vec<std::path::PathBuf> = ["host/src", "abi/src", "provider-kit/src"]
            .iter()
            .map(|d| workspace_file(d))
            .collect();
        for plugin in std::fs::read_dir(workspace_file("plugins")).unwrap() {
            dirs.push(plugin.unwrap().path().join("src"));
        }
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    // A variable is read by name (`var_os`, env_logger's `filter`) or named
                    // by a `&str` constant.
                    let reads = ["var(", "var_os(", "filter(", ": &str ="];
                    for line in text.lines().filter(|l| reads.iter().any(|r| l.contains(r))) {
                        for piece in line.split("\"AA_").skip(1) {
                            let name: String = piece
                                .chars()
                                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                                .collect();
                            if piece[name.len()..].starts_with('"') && !name.is_empty() {
                                in_code.insert(format!("AA_{name}"));
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(documented, in_code);
    }

    /// Every `--option` the README names is one of `aa`'s (or a prefix of some, as
    /// `--force-`), except the few of other programs it mentions.
    #[test]
    fn the_readme_names_only_options_aa_has() {
        use clap::CommandFactory;
        let command = <crate::Cli as CommandFactory>::command();
        let mut options: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        options.extend(["help".to_string(), "version".to_string()]);
        let others = [
            "no-check-device",
            "listed-incremental",
            "file",
            "compare-data",
        ];
        let readme = std::fs::read_to_string(workspace_file("README.md")).unwrap();
        for piece in readme.split("--").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect();
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                continue;
            }
            let known = if name.ends_with('-') {
                options.iter().any(|o| o.starts_with(&name))
            } else {
                options.contains(&name) || others.contains(&name.as_str())
            };
            assert!(known, "README.md names --{name}, which aa does not have");
        }
        for other in others {
            assert!(!options.iter().any(|o| o == other), "--{other}");
        }
    }

    #[test]
    fn markup_renders_in_both_forms() {
        let s = &parse(
            "= T | t | readme\nA `--x` *y*\nline.\n\n|| a | b\n- `k` :: v\n\n    .code\n\n    more\n1. one\n",
        )[0];
        let mut roff = Vec::new();
        write_roff_section(&mut roff, s).unwrap();
        assert_eq!(
            String::from_utf8(roff).unwrap(),
            ".SH \"T\"\nA \\fB\\-\\-x\\fR \\fIy\\fR line.\n.TP\n\\fBk\\fR\nv\n\
             .PP\n.RS 4\n.nf\n\\&.code\n\\&\n\\&more\n.fi\n.RE\n.IP 1. 4\none\n"
        );
        assert_eq!(
            markdown_region(s),
            format!(
                "{}\n### t\n\nA `--x` *y* line.\n\n| a | b |\n|---|---|\n| `k` | v |\n\n```\n.code\n\nmore\n```\n1. one\n{END_MARKER}",
                begin_marker("T")
            )
        );
        let readme = format!("x\n{}\ny\n", markdown_region(s));
        assert_eq!(
            readme_regions(&readme),
            [("T".to_string(), markdown_region(s))]
        );
    }
}
