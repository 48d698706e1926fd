//! HL7 v2 messages in their pipe-and-hat form (ER7): read from untrusted
//! bytes without a panic and within limits, and written with every
//! special character escaped. Separators come from MSH-1 and MSH-2.
//!
//! Written here rather than taken from a crate: the candidates either
//! panic on short input, decode escapes by character index over bytes,
//! or carry a licence this project cannot use (see `docs/interop.md`).
//!
//! Numbering is HL7's: in MSH, field 1 is the field separator and field 2
//! the encoding characters; in every other segment field 1 is the first
//! after the segment's name. Repetitions, components and subcomponents
//! count from 1 too.

use std::fmt::Write as _;

/// The most segments one message may have.
pub const MAX_SEGMENTS: usize = 1_000;
/// The most fields one segment may have.
pub const MAX_FIELDS: usize = 300;

/// Why a message cannot be read. Each names where, for the error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Er7Error {
    /// It does not start with an MSH segment.
    #[error("the message does not start with an MSH segment")]
    NoHeader,
    /// MSH-1 or MSH-2 is missing, repeated or not usable as separators.
    #[error("MSH-2 encoding characters are not usable: {0}")]
    BadSeparators(String),
    /// The bytes are not UTF-8 (ASCII is).
    #[error("segment {segment}: the text is not UTF-8 (or ASCII)")]
    NotText {
        /// 1-based segment number.
        segment: usize,
    },
    /// A segment's name is not three capital letters or digits.
    #[error("segment {segment}: {name:?} is not a segment name")]
    BadSegmentName {
        /// 1-based segment number.
        segment: usize,
        /// What stood there.
        name: String,
    },
    /// Past [`MAX_SEGMENTS`] or [`MAX_FIELDS`].
    #[error("too large: {0}")]
    TooLarge(String),
}

/// The separators of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    /// Between fields (`|`).
    pub field: char,
    /// Between components (`^`).
    pub component: char,
    /// Between repetitions (`~`).
    pub repetition: char,
    /// Starts and ends an escape (`\`).
    pub escape: char,
    /// Between subcomponents (`&`).
    pub subcomponent: char,
}

impl Default for Separators {
    fn default() -> Self {
        Separators {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
        }
    }
}

impl Separators {
    /// MSH-2 as written.
    pub fn encoding_characters(&self) -> String {
        [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect()
    }

    fn special(&self, c: char) -> Option<char> {
        match c {
            c if c == self.field => Some('F'),
            c if c == self.component => Some('S'),
            c if c == self.subcomponent => Some('T'),
            c if c == self.repetition => Some('R'),
            c if c == self.escape => Some('E'),
            _ => None,
        }
    }
}

/// A field: its repetitions, each of components, each of subcomponents,
/// every value unescaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field(pub Vec<Vec<Vec<String>>>);

impl Field {
    /// A field of one plain value.
    pub fn text(value: impl Into<String>) -> Field {
        Field(vec![vec![vec![value.into()]]])
    }

    /// A field of components (one repetition, no subcomponents).
    pub fn components<S: AsRef<str>>(values: &[S]) -> Field {
        Field(vec![
            values.iter().map(|v| vec![v.as_ref().to_owned()]).collect(),
        ])
    }

    /// Repetition `rep`, component `comp`, subcomponent `sub` (from 1);
    /// empty when absent.
    pub fn at(&self, rep: usize, comp: usize, sub: usize) -> &str {
        rep.checked_sub(1)
            .and_then(|r| self.0.get(r))
            .and_then(|r| comp.checked_sub(1).and_then(|c| r.get(c)))
            .and_then(|c| sub.checked_sub(1).and_then(|s| c.get(s)))
            .map_or("", String::as_str)
    }

    /// The first repetition's component `comp` (from 1).
    pub fn component(&self, comp: usize) -> &str {
        self.at(1, comp, 1)
    }

    /// How many repetitions.
    pub fn repetitions(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.0.iter().flatten().flatten().all(String::is_empty)
    }
}

/// One segment: its name and fields (field 1 first; for MSH, field 1 is
/// the field separator and field 2 the encoding characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Three letters or digits: `MSH`, `PID`, `RXG`...
    pub name: String,
    /// Fields from 1.
    pub fields: Vec<Field>,
}

impl Segment {
    /// A segment with no fields yet.
    pub fn new(name: &str) -> Segment {
        Segment {
            name: name.to_owned(),
            fields: Vec::new(),
        }
    }

    /// Field `n` (from 1); an empty field when absent.
    pub fn field(&self, n: usize) -> &Field {
        static EMPTY: Field = Field(Vec::new());
        n.checked_sub(1)
            .and_then(|i| self.fields.get(i))
            .unwrap_or(&EMPTY)
    }

    /// Field `n`'s first value (first repetition, component, subcomponent).
    pub fn value(&self, n: usize) -> &str {
        self.field(n).at(1, 1, 1)
    }

    /// Sets field `n` (from 1), filling the fields before it with empty
    /// ones.
    pub fn set(&mut self, n: usize, field: Field) -> &mut Segment {
        let i = n.max(1) - 1;
        if self.fields.len() <= i {
            self.fields.resize(i + 1, Field::default());
        }
        self.fields[i] = field;
        self
    }
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its separators (from MSH-1 and MSH-2).
    pub separators: Separators,
    /// Its segments, MSH first.
    pub segments: Vec<Segment>,
}

impl Message {
    /// The first segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// Every segment named `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.name == name)
    }

    /// The header (a parsed message always has one).
    pub fn msh(&self) -> Option<&Segment> {
        self.segments.first().filter(|s| s.name == "MSH")
    }

    /// Reads a message. Segments end with CR (LF and CR LF are taken too,
    /// as files and test tools write them).
    pub fn parse(bytes: &[u8]) -> Result<Message, Er7Error> {
        let separators = separators(bytes)?;
        let mut segments = Vec::new();
        for (i, raw) in bytes
            .split(|b| *b == b'\r' || *b == b'\n')
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let n = i + 1;
            if n > MAX_SEGMENTS {
                return Err(Er7Error::TooLarge(format!(
                    "more than {MAX_SEGMENTS} segments"
                )));
            }
            let text = std::str::from_utf8(raw).map_err(|_| Er7Error::NotText { segment: n })?;
            segments.push(segment(text, n, &separators)?);
        }
        Ok(Message {
            separators,
            segments,
        })
    }

    /// The message as ER7 text, segments ended by CR, every value escaped.
    pub fn to_er7(&self) -> String {
        let s = &self.separators;
        let mut out = String::new();
        for seg in &self.segments {
            out.push_str(&seg.name);
            let skip = if seg.name == "MSH" {
                // MSH-1 is the separator itself; MSH-2 is written raw.
                out.push(s.field);
                out.push_str(&s.encoding_characters());
                2
            } else {
                0
            };
            for field in seg.fields.iter().skip(skip) {
                out.push(s.field);
                write_field(&mut out, field, s);
            }
            out.push('\r');
        }
        out
    }
}

/// MSH-1 and MSH-2.
fn separators(bytes: &[u8]) -> Result<Separators, Er7Error> {
    if !bytes.starts_with(b"MSH") {
        return Err(Er7Error::NoHeader);
    }
    let text = bytes.get(3..9).unwrap_or_default();
    let chars: Vec<char> = text.iter().map(|b| char::from(*b)).collect();
    let bad = |why: &str| Er7Error::BadSeparators(why.to_owned());
    let [field, component, repetition, escape, subcomponent, after] = chars[..] else {
        return Err(bad("the header is too short"));
    };
    // Four encoding characters (a fifth, v2.7's truncation character, is
    // not supported by the IHE PCD profiles, which are v2.6).
    if after != field {
        return Err(bad("MSH-2 must be exactly four characters"));
    }
    let all = [field, component, repetition, escape, subcomponent];
    for (i, c) in all.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || !c.is_ascii() {
            return Err(bad(&format!("{c:?} cannot be a separator")));
        }
        if all[..i].contains(c) {
            return Err(bad(&format!("{c:?} is used twice")));
        }
    }
    Ok(Separators {
        field,
        component,
        repetition,
        escape,
        subcomponent,
    })
}

fn segment(text: &str, n: usize, s: &Separators) -> Result<Segment, Er7Error> {
    let name: String = text.chars().take_while(|c| *c != s.field).collect();
    if name.len() != 3
        || !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(Er7Error::BadSegmentName { segment: n, name });
    }
    let rest = text.get(3..).unwrap_or_default();
    let mut fields = Vec::new();
    let mut parts = rest.split(s.field);
    // The text after the name starts with the separator: skip the empty
    // piece before it.
    parts.next();
    if name == "MSH" {
        fields.push(Field::text(s.field.to_string()));
        fields.push(Field::text(parts.next().unwrap_or_default()));
    }
    for part in parts {
        if fields.len() >= MAX_FIELDS {
            return Err(Er7Error::TooLarge(format!(
                "segment {n} ({name}) has more than {MAX_FIELDS} fields"
            )));
        }
        fields.push(field(part, s));
    }
    Ok(Segment { name, fields })
}

fn field(text: &str, s: &Separators) -> Field {
    Field(
        text.split(s.repetition)
            .map(|rep| {
                rep.split(s.component)
                    .map(|comp| comp.split(s.subcomponent).map(|v| unescape(v, s)).collect())
                    .collect()
            })
            .collect(),
    )
}

/// `\F\ \S\ \T\ \R\ \E\` to their characters, `\Xhh..\` to its bytes
/// (when they are UTF-8), `\.br\` to a line break; any other escape, or
/// one never closed, is kept as written.
fn unescape(value: &str, s: &Separators) -> String {
    if !value.contains(s.escape) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(s.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + s.escape.len_utf8()..];
        let Some(end) = after.find(s.escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let code = &after[..end];
        let decoded = match code {
            "F" => Some(s.field.to_string()),
            "S" => Some(s.component.to_string()),
            "T" => Some(s.subcomponent.to_string()),
            "R" => Some(s.repetition.to_string()),
            "E" => Some(s.escape.to_string()),
            ".br" => Some("\n".to_owned()),
            hex if hex.starts_with('X') && hex.len() > 1 && hex.len() % 2 == 1 => (1..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .and_then(|b| String::from_utf8(b).ok()),
            _ => None,
        };
        if let Some(d) = decoded {
            out.push_str(&d);
        } else {
            out.push(s.escape);
            out.push_str(code);
            out.push(s.escape);
        }
        rest = &after[end + s.escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn write_field(out: &mut String, field: &Field, s: &Separators) {
    for (r, rep) in field.0.iter().enumerate() {
        if r > 0 {
            out.push(s.repetition);
        }
        for (c, comp) in rep.iter().enumerate() {
            if c > 0 {
                out.push(s.component);
            }
            for (i, sub) in comp.iter().enumerate() {
                if i > 0 {
                    out.push(s.subcomponent);
                }
                escape_into(out, sub, s);
            }
        }
    }
}

fn escape_into(out: &mut String, value: &str, s: &Separators) {
    for c in value.chars() {
        if let Some(code) = s.special(c) {
            out.push(s.escape);
            out.push(code);
            out.push(s.escape);
        } else if c == '\r' || c == '\n' {
            // A segment ends at CR: a line break inside a value is sent
            // as its hex escape.
            let _ = write!(out, "{}X{:02X}{}", s.escape, u32::from(c), s.escape);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "MSH|^~\\&|IOP^1234560000000001^EUI-64|IOP|GW^6543210000000001^EUI-64|GW|20261204103000+0000||RGV^O15^RGV_O15|MSG1|P|2.6|||AL|ER||UNICODE UTF-8|EN^English^ISO639||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.1^ISO\r\
PID|||98765^^^IHE^PI||Doe^John^^^^^L\r\
RXG|1|||1234^Dopamine|250||263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM\r";

    #[test]
    fn fields_count_from_one_and_msh_1_is_the_separator() {
        let m = Message::parse(ORDER.as_bytes()).expect("the example reads");
        let msh = m.msh().expect("it has a header");
        assert_eq!(msh.value(1), "|");
        assert_eq!(msh.value(2), "^~\\&");
        assert_eq!(msh.field(3).component(2), "1234560000000001");
        assert_eq!(msh.field(9).component(3), "RGV_O15");
        assert_eq!(msh.value(12), "2.6");
        let pid = m.segment("PID").expect("it has a PID");
        assert_eq!(pid.field(3).component(1), "98765");
        assert_eq!(pid.field(5).component(2), "John");
        let rxg = m.segment("RXG").expect("it has an RXG");
        assert_eq!(rxg.field(4).component(2), "Dopamine");
        assert_eq!(rxg.value(5), "250");
        assert_eq!(rxg.field(7).component(4), "mL");
        assert_eq!(rxg.value(99), "");
    }

    #[test]
    fn what_is_read_is_written_back_byte_for_byte() {
        let m = Message::parse(ORDER.as_bytes()).unwrap();
        assert_eq!(m.to_er7(), ORDER);
    }

    #[test]
    fn escapes_are_read_and_written() {
        let text =
            "MSH|^~\\&|A\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X41\\\\H\\h\\Zunclosed\r";
        let m = Message::parse(text.as_bytes()).unwrap();
        let nte = m.segment("NTE").unwrap();
        assert_eq!(nte.value(3), "a|b^c&d~e\\f\ngA\\H\\h\\Zunclosed");
        let mut out = Segment::new("NTE");
        out.set(3, Field::text("a|b^c&d~e\\f\rg"));
        let written = Message {
            separators: Separators::default(),
            segments: vec![out],
        }
        .to_er7();
        assert_eq!(written, "NTE|||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\r");
    }

    #[test]
    fn other_separators_are_taken_from_the_header() {
        // Components *, repetitions !, escape /, subcomponents %.
        let text = "MSH#*!/%#A*B!C*D%E/F/#G\r";
        let m = Message::parse(text.as_bytes()).unwrap();
        let msh = m.msh().unwrap();
        let f = msh.field(3);
        assert_eq!(f.at(1, 1, 1), "A");
        assert_eq!(f.at(1, 2, 1), "B");
        assert_eq!(f.at(2, 1, 1), "C");
        assert_eq!(f.at(2, 2, 1), "D");
        assert_eq!(f.at(2, 2, 2), "E#");
        assert_eq!(msh.value(4), "G");
        assert_eq!(m.to_er7(), text);
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        for (text, said) in [
            ("PID|1\r", "does not start with an MSH"),
            ("MSH|^~\r", "too short"),
            ("MSH|^~\\&#|A\r", "exactly four"),
            ("MSH|^^\\&|A\r", "used twice"),
            ("MSH|^~A&|A\r", "cannot be a separator"),
        ] {
            let e = Message::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(said), "{text:?}: {e}");
        }
        let e = Message::parse(b"MSH|^~\\&|A\rpid|1\r").unwrap_err();
        assert_eq!(
            e,
            Er7Error::BadSegmentName {
                segment: 2,
                name: "pid".into()
            }
        );
        let e = Message::parse(b"MSH|^~\\&|A\rNTE|\xff\r").unwrap_err();
        assert_eq!(e, Er7Error::NotText { segment: 2 });
        let many = format!("MSH|^~\\&|A\r{}", "NTE|1\r".repeat(MAX_SEGMENTS));
        assert!(matches!(
            Message::parse(many.as_bytes()),
            Err(Er7Error::TooLarge(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_values_survive_a_round_trip(
            values in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec("[ -~\\n\\r\u{e9}\u{3bc}]{0,12}", 1..3),
                    1..3),
                1..3),
        ) {
            let mut seg = Segment::new("NTE");
            seg.set(3, Field(values.clone()));
            let m = Message {
                separators: Separators::default(),
                segments: vec![msh(), seg],
            };
            let back = Message::parse(m.to_er7().as_bytes()).unwrap();
            proptest::prop_assert_eq!(back.segments[1].field(3), &Field(values));
        }

        #[test]
        fn no_input_makes_the_reader_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut with_header = b"MSH|^~\\&|".to_vec();
            with_header.extend(&bytes);
            let _ = Message::parse(&with_header);
            let _ = Message::parse(&bytes);
        }
    }

    fn msh() -> Segment {
        let mut s = Segment::new("MSH");
        s.set(1, Field::text("|"));
        s.set(2, Field::text("^~\\&"));
        s.set(3, Field::text("A"));
        s
    }
}
