//! The spreadsheet round trip (`pumpgwd library export FILE --csv`,
//! `pumpgwd library import-csv FILE`): a library as CSV, one row per care
//! area × drug × concentration with all its limits, so pharmacists edit
//! in the tool they already use; and back. Numbers stay the decimal
//! strings they were written as (never through a float), so JSON → CSV →
//! JSON → CSV → JSON comes back byte for byte. The library-wide columns
//! and a drug's limits repeat on each of its rows, and must agree: a row
//! that disagrees is an error naming the row and the column.

use serde_json::{Map, Value, json};

/// The columns, in order: (CSV header, JSON path below its level).
const LIBRARY: [(&str, &str); 7] = [
    ("library_id", "library_id"),
    ("library_name", "name"),
    ("version", "version"),
    ("created_at", "created_at"),
    ("author", "author"),
    ("override_roles", "policy.soft_override_roles"),
    ("override_reasons", "policy.override_reasons"),
];
const AREA: [(&str, &str); 5] = [
    ("care_area", "id"),
    ("care_area_name", "name"),
    ("weight_min_kg", "patient_weight_kg.min"),
    ("weight_max_kg", "patient_weight_kg.max"),
    ("orders", "orders"),
];
const DRUG: [(&str, &str); 25] = [
    ("drug", "id"),
    ("generic_name", "generic_name"),
    ("display_name", "display_name"),
    ("high_alert", "high_alert"),
    ("custom_unit", "custom_concentration.unit"),
    ("custom_min_per_ml", "custom_concentration.min_per_ml"),
    ("custom_max_per_ml", "custom_concentration.max_per_ml"),
    ("continuous_dose_unit", "continuous.dose_unit"),
    ("continuous_hard_min", "continuous.hard_min"),
    ("continuous_soft_min", "continuous.soft_min"),
    ("continuous_soft_max", "continuous.soft_max"),
    ("continuous_hard_max", "continuous.hard_max"),
    ("bolus_allowed", "bolus.allowed"),
    ("bolus_dose_unit", "bolus.dose_unit"),
    ("bolus_soft_max", "bolus.soft_max"),
    ("bolus_hard_max", "bolus.hard_max"),
    ("bolus_min_duration_s", "bolus.min_duration_s"),
    ("bolus_max_rate_ml_per_h", "bolus.max_rate_ml_per_h"),
    ("bolus_max_volume_ml", "bolus.max_volume_ml"),
    (
        "bolus_max_share_of_remaining_percent",
        "bolus.max_share_of_remaining_percent",
    ),
    ("bolus_confirmations", "bolus.confirmations"),
    ("cumulative_max", "cumulative.max"),
    ("cumulative_unit", "cumulative.unit"),
    ("cumulative_window_minutes", "cumulative.window_minutes"),
    ("advisory", "advisory"),
];
const CONCENTRATION: [(&str, &str); 4] = [
    ("concentration_amount", "amount"),
    ("concentration_unit", "unit"),
    ("concentration_volume_ml", "volume_ml"),
    ("concentration_standard", "standard"),
];

/// Lists in one cell are separated by this (override roles and reasons).
const LIST: &str = " | ";

/// Why a sheet or a library cannot be turned into the other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    /// The library is not JSON of the expected shape.
    #[error("the library cannot be exported: {0}")]
    Library(String),
    /// The CSV cannot be read as CSV.
    #[error("the sheet is not CSV: {0}")]
    Csv(String),
    /// A header is missing or unknown.
    #[error("the header row: {0}")]
    Header(String),
    /// One cell is wrong.
    #[error("row {row}, column {column}: {message}")]
    Cell {
        /// 1-based, counting the header row as row 1 (as a spreadsheet).
        row: usize,
        /// The column's header.
        column: String,
        /// What is wrong.
        message: String,
    },
}

fn all_columns() -> Vec<&'static str> {
    LIBRARY
        .iter()
        .chain(&AREA)
        .chain(&DRUG)
        .chain(&CONCENTRATION)
        .map(|(h, _)| *h)
        .collect()
}

/// A cell from a JSON value: strings as they are, numbers and booleans as
/// JSON writes them, lists joined, absent empty.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(LIST),
        Some(other) => other.to_string(),
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// The library (its JSON) as CSV.
pub fn to_csv(library: &[u8]) -> Result<String, SheetError> {
    let v: Value =
        serde_json::from_slice(library).map_err(|e| SheetError::Library(e.to_string()))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = all_columns();
    w.write_record(&header)
        .map_err(|e| SheetError::Csv(e.to_string()))?;
    let areas = v
        .get("care_areas")
        .and_then(Value::as_array)
        .ok_or_else(|| SheetError::Library("no care_areas".to_owned()))?;
    for area in areas {
        for drug in area
            .get("drugs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let concentrations = drug
                .get("concentrations")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    SheetError::Library(format!(
                        "drug {} has no concentrations",
                        cell(drug.get("id"))
                    ))
                })?;
            for c in concentrations {
                let row: Vec<String> = LIBRARY
                    .iter()
                    .map(|(_, p)| cell(get(&v, p)))
                    .chain(AREA.iter().map(|(_, p)| cell(get(area, p))))
                    .chain(DRUG.iter().map(|(_, p)| cell(get(drug, p))))
                    .chain(CONCENTRATION.iter().map(|(_, p)| cell(get(c, p))))
                    .collect();
                w.write_record(&row)
                    .map_err(|e| SheetError::Csv(e.to_string()))?;
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| SheetError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| SheetError::Csv(e.to_string()))
}

/// What a cell becomes in JSON, by its column.
fn value(column: &str, text: &str, row: usize) -> Result<Option<Value>, SheetError> {
    let bad = |message: String| SheetError::Cell {
        row,
        column: column.to_owned(),
        message,
    };
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(match column {
        "version" | "bolus_confirmations" | "cumulative_window_minutes" => json!(
            text.parse::<u64>()
                .map_err(|_| bad(format!("{text:?} is not a whole number")))?
        ),
        "high_alert" | "bolus_allowed" | "concentration_standard" => match text {
            "true" => json!(true),
            "false" => json!(false),
            _ => return Err(bad(format!("{text:?} is neither true nor false"))),
        },
        "override_roles" | "override_reasons" => json!(text.split(LIST).collect::<Vec<_>>()),
        _ => json!(text),
    }))
}

/// Sets `path` (dotted) in `v` to `x`.
fn set(v: &mut Value, path: &str, x: Value) {
    let mut at = v;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if keys.peek().is_none() {
            at[key] = x;
            return;
        }
        if at.get(key).is_none() {
            at[key] = Value::Object(Map::new());
        }
        at = &mut at[key];
    }
}

/// One level (library, area or drug) of a row: its columns' values.
fn level(
    columns: &[(&str, &str)],
    row: &csv::StringRecord,
    index: &[usize],
    number: usize,
) -> Result<Value, SheetError> {
    let mut v = Value::Object(Map::new());
    for ((column, path), i) in columns.iter().zip(index) {
        if let Some(x) = value(column, row.get(*i).unwrap_or_default(), number)? {
            set(&mut v, path, x);
        }
    }
    Ok(v)
}

/// The sheet (CSV) as a library's JSON, pretty-printed, keys in order.
pub fn from_csv(text: &str) -> Result<String, SheetError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = r
        .headers()
        .map_err(|e| SheetError::Csv(e.to_string()))?
        .clone();
    let find = |c: &str| {
        headers
            .iter()
            .position(|h| h.trim() == c)
            .ok_or_else(|| SheetError::Header(format!("no column {c:?}")))
    };
    let index = |cols: &[(&str, &str)]| {
        cols.iter()
            .map(|(c, _)| find(c))
            .collect::<Result<Vec<_>, _>>()
    };
    let (li, ai, di, ci) = (
        index(&LIBRARY)?,
        index(&AREA)?,
        index(&DRUG)?,
        index(&CONCENTRATION)?,
    );
    for h in &headers {
        if !all_columns().contains(&h.trim()) {
            return Err(SheetError::Header(format!("unknown column {h:?}")));
        }
    }
    let mut library: Option<(Value, usize)> = None;
    let mut areas: Vec<Area> = Vec::new();
    for (n, record) in r.records().enumerate() {
        let number = n + 2;
        let row = record.map_err(|e| SheetError::Csv(e.to_string()))?;
        let lib = level(&LIBRARY, &row, &li, number)?;
        match &library {
            None => library = Some((lib, number)),
            Some((first, at)) => agree((first, &lib), (&LIBRARY, "library"), (number, *at))?,
        }
        let area = level(&AREA, &row, &ai, number)?;
        let found = areas
            .iter()
            .position(|a| a.value.get("id") == area.get("id"));
        let area_at = if let Some(i) = found {
            agree(
                (&areas[i].value, &area),
                (&AREA, "care area"),
                (number, areas[i].row),
            )?;
            i
        } else {
            areas.push(Area {
                value: area,
                row: number,
                drugs: Vec::new(),
            });
            areas.len() - 1
        };
        let drug = level(&DRUG, &row, &di, number)?;
        let concentration = level(&CONCENTRATION, &row, &ci, number)?;
        let drugs = &mut areas[area_at].drugs;
        if let Some(i) = drugs
            .iter()
            .position(|(d, _)| d.get("id") == drug.get("id"))
        {
            let (known, at) = &drugs[i];
            let mut known_limits = known.clone();
            if let Some(o) = known_limits.as_object_mut() {
                o.remove("concentrations");
            }
            agree((&known_limits, &drug), (&DRUG, "drug"), (number, *at))?;
            push_concentration(&mut drugs[i].0, concentration);
        } else {
            let mut drug = drug;
            push_concentration(&mut drug, concentration);
            drugs.push((drug, number));
        }
    }
    let (mut lib, _) = library.ok_or_else(|| SheetError::Csv("no rows".to_owned()))?;
    lib["format"] = json!(super::FORMAT_NAME);
    lib["format_version"] = json!(super::FORMAT_VERSION);
    lib["care_areas"] = Value::Array(
        areas
            .into_iter()
            .map(|a| {
                let mut v = a.value;
                v["drugs"] = Value::Array(a.drugs.into_iter().map(|(d, _)| d).collect());
                v
            })
            .collect(),
    );
    serde_json::to_string_pretty(&lib)
        .map(|s| s + "\n")
        .map_err(|e| SheetError::Csv(e.to_string()))
}

/// A care area read so far: its columns, the row it first came on, its
/// drugs (each with the row it first came on).
struct Area {
    value: Value,
    row: usize,
    drugs: Vec<(Value, usize)>,
}

fn push_concentration(drug: &mut Value, c: Value) {
    if drug.get("concentrations").is_none() {
        drug["concentrations"] = json!([]);
    }
    if let Some(list) = drug["concentrations"].as_array_mut() {
        list.push(c);
    }
}

/// A repeated level must say the same on every row: the first column
/// that differs is the error.
fn agree(
    (first, this): (&Value, &Value),
    (columns, what): (&[(&str, &str)], &str),
    (row, first_row): (usize, usize),
) -> Result<(), SheetError> {
    for (column, path) in columns {
        let (a, b) = (get(first, path), get(this, path));
        if a != b {
            return Err(SheetError::Cell {
                row,
                column: (*column).to_owned(),
                message: format!(
                    "{:?} differs from {:?} on row {first_row}, for the same {what}",
                    cell(b),
                    cell(a),
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../config/drug-library.example.json");

    #[test]
    fn a_round_trip_is_byte_identical_and_means_the_same_library() {
        let sheet = to_csv(EXAMPLE.as_bytes()).expect("exports");
        let json = from_csv(&sheet).expect("imports");
        // The same library: nothing differs but the layout of the file.
        let (a, _) = super::super::parse(EXAMPLE.as_bytes()).expect("the example");
        let (b, _) = super::super::parse(json.as_bytes()).expect("what came back is valid");
        assert!(super::super::diff::diff(&a, &b).is_empty());
        // And round again: byte for byte.
        let again = from_csv(&to_csv(json.as_bytes()).expect("exports")).expect("imports");
        assert_eq!(again, json);
        assert_eq!(
            to_csv(again.as_bytes()).expect("exports"),
            to_csv(json.as_bytes()).expect("exports")
        );
    }

    #[test]
    fn errors_name_the_row_and_the_column() {
        let sheet = to_csv(EXAMPLE.as_bytes()).expect("exports");
        let mut lines: Vec<String> = sheet.lines().map(str::to_owned).collect();
        // Row 3 is fentanyl's second row in adult critical care? Find a
        // drug with two concentrations and change one row's hard maximum.
        let header: Vec<&str> = lines[0].split(',').collect();
        let hard = header
            .iter()
            .position(|h| *h == "continuous_hard_max")
            .expect("the column");
        let drug = header
            .iter()
            .position(|h| *h == "drug")
            .expect("the column");
        let rows: Vec<Vec<String>> = lines[1..]
            .iter()
            .map(|l| {
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(l.as_bytes())
                    .records()
                    .next()
                    .expect("a row")
                    .expect("CSV")
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        let second = (1..rows.len())
            .find(|&i| rows[i][drug] == rows[i - 1][drug] && !rows[i][hard].is_empty())
            .expect("a drug with two concentrations");
        let mut changed = rows[second].clone();
        changed[hard] = format!("{}0", changed[hard]);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(&changed).expect("writes");
        let line = String::from_utf8(w.into_inner().expect("flushed")).expect("UTF-8");
        lines[second + 1] = line.trim_end().to_owned();
        let e = from_csv(&(lines.join("\n") + "\n")).expect_err("refused");
        assert_eq!(
            e,
            SheetError::Cell {
                row: second + 2,
                column: "continuous_hard_max".to_owned(),
                message: format!(
                    "{:?} differs from {:?} on row {}, for the same drug",
                    changed[hard],
                    rows[second][hard],
                    second + 1
                ),
            }
        );
        let bad = sheet.replacen("true", "yes", 1);
        assert!(
            matches!(from_csv(&bad), Err(SheetError::Cell { row: 2, .. })),
            "{:?}",
            from_csv(&bad)
        );
        let e = from_csv(&sheet.replacen("library_id", "library", 1)).expect_err("refused");
        assert!(matches!(e, SheetError::Header(_)), "{e}");
    }
}
