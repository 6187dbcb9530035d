//! The optional stats file: one row per scored pair, under the `similarity` message's field
//! names; CSV when the file name ends in `.csv`, JSON lines otherwise, which end with one
//! `{"type": "summary", …}` record. Each row goes to the file in one unbuffered write as
//! soon as its pair is scored, so a stopped or killed pipeline loses no scored pair's row
//! and `tail -f` shows each at once.

use std::fs::File;
use std::io::Write;

use crate::messages::{Field, Value, json_object};

pub struct StatsFile {
    file: File,
    csv: bool,
    /// The CSV columns, from the first row.
    columns: Option<Vec<String>>,
}

fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Time(None)) => String::new(),
        Some(Value::Time(Some(v))) => v.nseconds().to_string(),
        Some(Value::U64(v)) => v.to_string(),
        Some(Value::U32(v)) => v.to_string(),
        Some(Value::I32(v)) => v.to_string(),
        Some(Value::F64(v)) => v.to_string(),
        Some(Value::Bool(v)) => v.to_string(),
        Some(Value::Str(v)) => v.clone(),
    }
}

impl StatsFile {
    /// Creates (truncates) the file; the error says why it cannot be written.
    pub fn create(path: &str) -> std::io::Result<Self> {
        Ok(StatsFile {
            file: File::create(path)?,
            csv: path.to_ascii_lowercase().ends_with(".csv"),
            columns: None,
        })
    }

    /// Writes one pair's row: every field, empty (CSV) or left out (JSON) where the pair
    /// has no value. CSV columns are those of the first row.
    pub fn write_pair(&mut self, fields: &[Field]) -> std::io::Result<()> {
        let mut text = String::new();
        if self.csv {
            let columns = self.columns.get_or_insert_with(|| {
                let names: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
                text = names.join(",") + "\n";
                names
            });
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    let value = fields
                        .iter()
                        .find(|(k, _)| k == c)
                        .and_then(|(_, v)| v.as_ref());
                    csv_cell(value)
                })
                .collect();
            text += &cells.join(",");
        } else {
            text = serde_json::Value::Object(json_object(fields)).to_string();
        }
        text.push('\n');
        self.file.write_all(text.as_bytes())
    }

    /// Ends JSON lines with the summary record (CSV files have none).
    pub fn write_summary(&mut self, fields: &[Field]) -> std::io::Result<()> {
        if self.csv {
            return Ok(());
        }
        let mut row = serde_json::Map::new();
        row.insert("type".into(), "summary".into());
        row.extend(json_object(fields));
        let text = serde_json::Value::Object(row).to_string() + "\n";
        self.file.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_the_file_as_soon_as_written() {
        let dir = std::env::temp_dir().join(format!("stats-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.csv");
        let mut f = StatsFile::create(path.to_str().unwrap()).unwrap();
        let row = |frame, psnr: Option<f64>| {
            vec![
                ("frame".to_string(), Some(Value::U64(frame))),
                ("pts".to_string(), Some(Value::Time(None))),
                ("psnr".to_string(), psnr.map(Value::F64)),
            ]
        };
        f.write_pair(&row(0, Some(f64::INFINITY))).unwrap();
        // Read while the file is still open: nothing is held back in a buffer.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "frame,pts,psnr\n0,,inf\n"
        );
        f.write_pair(&row(1, None)).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("1,,\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
