//! Embeds the surveyors' app: walks `app/` and writes a table of its files
//! (path, content type, `include_bytes!`), so that a new file is served
//! without a list to keep up to date. Hidden files are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("app");
    // A directory is scanned whole: any file added, changed or removed
    // under it builds the table again.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &root, &mut files)?;
    }
    files.sort();
    let mut table = String::from("&[\n");
    for (path, absolute) in &files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        writeln!(
            table,
            "    ({path:?}, {:?}, include_bytes!({:?})),",
            content_type(path),
            absolute.display().to_string()
        )?;
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("app_files.rs");
    std::fs::write(out, table)?;
    Ok(())
}

/// Every file under `dir`, as its `/`-separated path below `root`.
fn walk(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), Box<dyn std::error::Error>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root)?;
            let parts: Option<Vec<&str>> =
                relative.components().map(|c| c.as_os_str().to_str()).collect();
            if let Some(parts) = parts {
                files.push((parts.join("/"), path.clone()));
            }
        }
    }
    Ok(())
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
