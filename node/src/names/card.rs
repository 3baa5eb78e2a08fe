//! Reads the two facts publishing takes from a model or dataset card: its `license:`
//! and its `tags:`, from the YAML front matter Hugging Face cards start with
//! (`---` lines around `key: value` lines). Only those two keys, in their two common
//! shapes (`tags: [a, b]` or a `- item` list), are read; anything else is ignored, and
//! a card without front matter gives nothing.

use seedbank_protocol::labels::{validate_licence, validate_tag};
use seedbank_protocol::limits::MAX_TAGS;

/// What a card's front matter says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFacts {
    /// Its `license:` (`licence:` too), if it is a valid SPDX expression.
    pub licence: Option<String>,
    /// Its `tags:` that are valid tags, at most [`MAX_TAGS`].
    pub tags: Vec<String>,
}

fn unquote(value: &str) -> &str {
    value.trim().trim_matches(|c| c == '"' || c == '\'')
}

/// Reads `text`'s front matter.
pub fn card_facts(text: &str) -> CardFacts {
    let mut facts = CardFacts::default();
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("---") {
        return facts;
    }
    let mut in_tags = false;
    for line in lines {
        if line.trim() == "---" {
            break;
        }
        if in_tags {
            if let Some(item) = line.trim_start().strip_prefix("- ") {
                facts.tags.push(unquote(item).to_owned());
                continue;
            }
            in_tags = false;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        match key.trim() {
            "license" | "licence" => {
                let value = unquote(value);
                if validate_licence(value).is_ok() {
                    facts.licence = Some(value.to_owned());
                }
            }
            "tags" => {
                let value = value.trim();
                if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                    facts
                        .tags
                        .extend(list.split(',').map(|t| unquote(t).to_owned()));
                } else if value.is_empty() {
                    in_tags = true;
                } else {
                    facts.tags.push(unquote(value).to_owned());
                }
            }
            _ => {}
        }
    }
    facts.tags.retain(|t| validate_tag(t).is_ok());
    normalise_tags(&mut facts.tags);
    facts
}

/// Sorts tags, drops repeats and keeps at most [`MAX_TAGS`].
pub fn normalise_tags(tags: &mut Vec<String>) {
    tags.sort();
    tags.dedup();
    tags.truncate(MAX_TAGS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_licence_and_both_tag_shapes() {
        let card = "---\nlicense: apache-2.0\ntags:\n- text-generation\n- llama\n  - nested\nlanguage: en\n---\n# Toy\n";
        let facts = card_facts(card);
        assert_eq!(facts.licence.as_deref(), Some("apache-2.0"));
        assert_eq!(facts.tags, ["llama", "nested", "text-generation"]);
        let inline = card_facts("---\ntags: [toy, 'tiny model', demo]\n---\n");
        assert_eq!(inline.tags, ["demo", "toy"]);
        assert_eq!(
            card_facts("# no front matter\nlicense: MIT"),
            CardFacts::default()
        );
    }
}
