//! The manifest `tla/configs.txt`: one configuration a line, with the verdict TLC must
//! reach on it.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Verdict;

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique short name.
    pub name: String,
    /// TLA+ module, without `.tla`.
    pub module: String,
    /// TLC configuration file, relative to the manifest's directory.
    pub cfg: String,
    /// The verdict TLC must reach.
    pub expected: Verdict,
}

/// Parses the manifest text; `origin` names the file in error messages.
pub fn parse_manifest(text: &str, origin: &str) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{origin}:{}", i + 1);
        let cols: Vec<&str> = line.split_whitespace().collect();
        let expected = match cols.get(3..) {
            Some(["pass"]) => Verdict::Pass,
            Some(["violates", name]) => Verdict::Violates((*name).to_string()),
            _ => bail!(
                "{at}: expected `name module cfg pass` or `name module cfg violates NAME`, \
                 found `{line}`"
            ),
        };
        if entries.iter().any(|e| e.name == cols[0]) {
            bail!("{at}: configuration `{}` is listed twice", cols[0]);
        }
        entries.push(Entry {
            name: cols[0].to_string(),
            module: cols[1].trim_end_matches(".tla").to_string(),
            cfg: cols[2].to_string(),
            expected,
        });
    }
    Ok(entries)
}

/// Reads the manifest at `manifest_path`, keeps only the configuration named `only` (if
/// given), and checks that every module and cfg file it names exists in `dir`.
pub fn load(dir: &Path, manifest_path: &Path, only: Option<&str>) -> Result<Vec<Entry>> {
    let text = fs::read_to_string(manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let mut entries = parse_manifest(&text, &manifest_path.display().to_string())?;
    if let Some(name) = only {
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        entries.retain(|e| e.name == name);
        if entries.is_empty() {
            bail!(
                "no configuration named `{name}` in {}; the configurations are: {}",
                manifest_path.display(),
                names.join(", ")
            );
        }
    }
    for e in &entries {
        for file in [e.cfg.clone(), format!("{}.tla", e.module)] {
            if !dir.join(&file).is_file() {
                bail!(
                    "{}: configuration `{}` names {file}, which does not exist",
                    manifest_path.display(),
                    e.name
                );
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tla::{find_dir, MANIFEST};

    #[test]
    fn parses_the_manifest() {
        let m = "# comment\n\nsafety MCPhysaliaCell MCSafety.cfg pass\n\
                 mutant-x MCPhysaliaCell.tla MCMutant_x.cfg violates Agreement\n";
        let e = parse_manifest(m, "configs.txt").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].expected, Verdict::Pass);
        assert_eq!(e[1].module, "MCPhysaliaCell");
        assert_eq!(e[1].expected, Verdict::Violates("Agreement".into()));
    }

    #[test]
    fn rejects_a_bad_manifest_line_naming_where() {
        let err = parse_manifest("a b c\n", "configs.txt")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("configs.txt:1:"), "{err}");
        let err = parse_manifest("a M c pass\na M d pass\n", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn an_unknown_configuration_name_lists_the_valid_ones() {
        let dir = find_dir().unwrap();
        let err = load(&dir, &dir.join(MANIFEST), Some("no-such"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no configuration named `no-such`"), "{err}");
        assert!(err.contains("the configurations are: "), "{err}");
        let first = parse_manifest(&fs::read_to_string(dir.join(MANIFEST)).unwrap(), MANIFEST)
            .unwrap()[0]
            .name
            .clone();
        assert!(err.contains(&first), "{err}");
    }

    #[test]
    fn the_shipped_manifest_parses_and_names_existing_files() {
        // Unit tests run in the crate's directory: the workspace's tla/ is found upwards.
        let dir = find_dir().unwrap();
        let text = fs::read_to_string(dir.join(MANIFEST)).unwrap();
        let entries = parse_manifest(&text, MANIFEST).unwrap();
        assert!(
            entries
                .iter()
                .filter(|e| e.expected != Verdict::Pass)
                .count()
                >= 6
        );
        for e in entries {
            assert!(dir.join(&e.cfg).is_file(), "{}", e.cfg);
            assert!(
                dir.join(format!("{}.tla", e.module)).is_file(),
                "{}",
                e.module
            );
        }
    }
}
