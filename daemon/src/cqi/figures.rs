//! The report's figures, computed from log records (`docs/event-log.md`)
//! in one pass, each gateway's records in their order. Each figure is
//! defined once, here, and in `docs/report.md` in words.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// What the report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// From (included), RFC 3339 UTC with milliseconds.
    pub from: String,
    /// To (excluded).
    pub to: String,
    /// One site (archive only), or all.
    pub site: Option<String>,
    /// One care area, or all.
    pub care_area: Option<String>,
}

impl Scope {
    /// A scope from two times.
    pub fn new(
        from: OffsetDateTime,
        to: OffsetDateTime,
        site: Option<String>,
        care_area: Option<String>,
    ) -> Scope {
        Scope {
            from: crate::store::record::time_text(from),
            to: crate::store::record::time_text(to),
            site,
            care_area,
        }
    }
}

/// `n` of `d` as a percentage with one decimal (`"96.3"`), rounded half
/// up, in integers; `"-"` when `d` is 0.
pub fn percent(n: u64, d: u64) -> String {
    if d == 0 {
        return "-".to_owned();
    }
    let tenths = (u128::from(n) * 1000 + u128::from(d) / 2) / u128::from(d);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Programmes requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Programmes {
    /// Continuous and other non-bolus programmes.
    pub infusions: u64,
    /// Boluses.
    pub boluses: u64,
    /// Both.
    pub total: u64,
}

/// The share of infusions the library checked (ISMP's measure).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnderLibrary {
    /// Infusions with a verdict.
    pub checked: u64,
    /// All infusions.
    pub total: u64,
    /// `checked` of `total`, percent, one decimal.
    pub percent: String,
    /// At least 95% (ISMP's target), in integers.
    pub meets_ismp_95: bool,
}

/// Alerts: verdicts other than pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Alerts {
    /// Soft-limit verdicts.
    pub soft_limit: u64,
    /// Hard-limit verdicts.
    pub hard_limit: u64,
    /// Blocks.
    pub block: u64,
    /// All three.
    pub total: u64,
    /// `total` per 100 programmes, one decimal.
    pub per_100_programmes: String,
}

/// A count under some keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Drug (library id).
    pub drug: String,
    /// Care area.
    pub care_area: String,
    /// The limit: reason code and limit name (`DOSE_RATE_LIMIT soft_max`).
    pub limit: String,
    /// Role of who confirmed (overrides only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The override reason given (overrides only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many.
    pub count: u64,
}

/// Concentrations caught before anything was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Caught {
    /// Programmes blocked for a concentration the library does not allow.
    pub not_in_library: u64,
    /// Container labels typed at the terminal that did not match the
    /// programme.
    pub label_mismatch: u64,
    /// Programmes whose concentration differed from the prescriber's order.
    pub order_mismatch: u64,
    /// All three.
    pub total: u64,
}

/// Bolus confirmations at the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Boluses {
    /// Bolus stages confirmed.
    pub confirmed: u64,
    /// Of which a doctor signed.
    pub by_doctor: u64,
}

/// A pump's time off the active library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PumpOff {
    /// Its gateway's site (read from the archive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Its gateway.
    pub gateway: String,
    /// Its port.
    pub pump: String,
    /// Times it went off.
    pub episodes: u64,
    /// Seconds off in all, within the period.
    pub seconds: u64,
}

/// One care area's programmes and alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Area {
    /// The care area.
    pub care_area: String,
    /// Programmes.
    pub programmes: u64,
    /// Checked against the library.
    pub checked: u64,
    /// Alerts.
    pub alerts: u64,
    /// Soft-limit overrides.
    pub overrides: u64,
}

/// One day's programmes and alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Infusions requested.
    pub infusions: u64,
    /// Boluses requested.
    pub boluses: u64,
    /// Alerts.
    pub alerts: u64,
}

/// Every figure of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// What it covers.
    pub scope: Scope,
    /// Records read within it.
    pub records: u64,
    /// Gateways with records within it.
    pub gateways: u64,
    /// Programmes requested.
    pub programmes: Programmes,
    /// The share of infusions checked against the library.
    pub under_library: UnderLibrary,
    /// Alerts.
    pub alerts: Alerts,
    /// Soft-limit overrides confirmed.
    pub overrides: u64,
    /// By drug, care area, limit, role and reason.
    pub overrides_by: Vec<Row>,
    /// Hard-limit stops by drug, care area and limit.
    pub hard_limit_stops: Vec<Row>,
    /// Concentrations caught.
    pub concentrations_caught: Caught,
    /// Bolus confirmations.
    pub boluses_confirmed: Boluses,
    /// Pumps that were off the active library.
    pub pumps_off_library: Vec<PumpOff>,
    /// The soft limits overridden most (at most 10): candidates for
    /// revision.
    pub most_overridden: Vec<Row>,
    /// Per care area.
    pub by_care_area: Vec<Area>,
    /// Per day.
    pub per_day: Vec<Day>,
}

/// A programme being followed from its request to its answer.
#[derive(Debug, Default)]
struct Open {
    bolus: bool,
    drug: String,
    care_area: String,
    /// Its soft-limit reasons (`CODE limit`).
    soft: Vec<String>,
}

/// A pump's library state.
#[derive(Debug, Default)]
struct PumpState {
    online: bool,
    off_since: Option<OffsetDateTime>,
    episodes: u64,
    seconds: i64,
}

/// The figures so far; feed it records with [`Tally::record`], then
/// [`Tally::finish`].
#[derive(Debug)]
pub struct Tally {
    scope: Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    records: u64,
    gateways: BTreeSet<String>,
    programmes: Programmes,
    checked_infusions: u64,
    /// The site of the records being read (archive), empty for files.
    site: String,
    alerts: Alerts,
    overrides: u64,
    overrides_by: BTreeMap<(String, String, String, String, String), u64>,
    hard: BTreeMap<(String, String, String), u64>,
    most: BTreeMap<(String, String, String), u64>,
    caught: Caught,
    boluses: Boluses,
    areas: BTreeMap<String, Area>,
    days: BTreeMap<String, Day>,
    /// Open programmes by gateway, pump and request.
    open: HashMap<(String, String, u64), Open>,
    /// Staff roles by gateway and staff id (from `pin_checked`).
    roles: HashMap<(String, String), String>,
    pumps: BTreeMap<(String, String), PumpState>,
}

fn text<'a>(r: &'a Value, key: &str) -> &'a str {
    r.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `CODE limit` of a logged reason.
fn limit_of(reason: &Value) -> String {
    let code = text(reason, "code");
    match reason.get("limit").and_then(Value::as_str) {
        Some(l) => format!("{code} {l}"),
        None => code.to_owned(),
    }
}

fn parse_time(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

impl Tally {
    /// An empty tally for `scope` (whose times must parse: [`Scope::new`]).
    pub fn new(scope: Scope) -> Tally {
        let from = parse_time(&scope.from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let to = parse_time(&scope.to).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Tally {
            scope,
            from,
            to,
            records: 0,
            gateways: BTreeSet::new(),
            programmes: Programmes::default(),
            checked_infusions: 0,
            site: String::new(),
            alerts: Alerts::default(),
            overrides: 0,
            overrides_by: BTreeMap::new(),
            hard: BTreeMap::new(),
            most: BTreeMap::new(),
            caught: Caught::default(),
            boluses: Boluses::default(),
            areas: BTreeMap::new(),
            days: BTreeMap::new(),
            open: HashMap::new(),
            roles: HashMap::new(),
            pumps: BTreeMap::new(),
        }
    }

    /// Takes one record's bytes from an archive's `site`: gateways are
    /// told apart by site and id.
    pub fn record_from(&mut self, site: &str, bytes: &[u8]) {
        site.clone_into(&mut self.site);
        self.record(bytes);
    }

    /// [`Tally::learn`] for a record of an archive's `site`.
    pub fn learn_from(&mut self, site: &str, bytes: &[u8]) {
        site.clone_into(&mut self.site);
        self.learn(bytes);
    }

    /// The key a record's gateway is known by: `site/gateway` from an
    /// archive (neither may hold a `/`), the id alone from files.
    fn gateway_of(&self, r: &Value) -> String {
        let gateway = text(r, "gateway");
        if self.site.is_empty() {
            gateway.to_owned()
        } else {
            format!("{}/{gateway}", self.site)
        }
    }

    /// Takes one record's bytes (records of one gateway in their order;
    /// gateways in any order). A line that is not a record is skipped.
    pub fn record(&mut self, bytes: &[u8]) {
        if let Ok(r) = serde_json::from_slice::<Value>(bytes) {
            self.value(&r);
        }
    }

    /// The record types whose state reaches into the period from before
    /// it: who is who, and which pump was online on which library.
    pub const STATE_TYPES: &'static [&'static str] = &[
        "pin_checked",
        "link_up",
        "link_down",
        "library_installed_on_pump",
        "library_activated",
    ];

    /// Learns the state a record from before the period leaves (its type
    /// one of [`Tally::STATE_TYPES`]), without counting it: for an archive
    /// read for the period only.
    pub fn learn(&mut self, bytes: &[u8]) {
        if let Ok(r) = serde_json::from_slice::<Value>(bytes) {
            self.state(&r);
        }
    }

    fn state(&mut self, r: &Value) {
        self.learn_role(r);
        let kind = text(r, "type");
        let other_area = self
            .scope
            .care_area
            .as_deref()
            .is_some_and(|a| a != text(r, "care_area"));
        if !other_area
            && matches!(
                kind,
                "link_up" | "link_down" | "library_installed_on_pump" | "library_activated"
            )
        {
            let pump = text(r, "pump").to_owned();
            let gateway = self.gateway_of(r);
            self.library_state(r, kind, &gateway, &pump, text(r, "at"));
        }
    }

    fn learn_role(&mut self, r: &Value) {
        if text(r, "type") == "pin_checked"
            && let Some(role) = r.get("role").and_then(Value::as_str)
        {
            let gateway = self.gateway_of(r);
            self.roles
                .insert((gateway, text(r, "staff_id").to_owned()), role.to_owned());
        }
    }

    fn value(&mut self, r: &Value) {
        let gateway = self.gateway_of(r);
        let kind = text(r, "type");
        let at = text(r, "at");
        // State is learnt from every record, in the period or not.
        self.state(r);
        let care_area = text(r, "care_area");
        if at < self.scope.from.as_str()
            || at >= self.scope.to.as_str()
            || self
                .scope
                .care_area
                .as_deref()
                .is_some_and(|a| a != care_area)
        {
            return;
        }
        self.records += 1;
        self.gateways.insert(gateway.clone());
        let pump = r
            .get("pump")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let request = r.get("request").and_then(Value::as_u64).unwrap_or(0);
        let key = (gateway.clone(), pump.clone(), request);
        match kind {
            "programme_requested" => self.requested(r, key, care_area, at),
            "verdict" => self.verdict(r, &key, at),
            "confirmed" => self.confirmed(r, &key),
            "confirmation_refused" if text(r, "code") == "CONCENTRATION_MISMATCH" => {
                self.caught.label_mismatch += 1;
                self.caught.total += 1;
            }
            "authorised" | "denied" => {
                self.open.remove(&key);
            }
            _ => {}
        }
    }

    fn requested(&mut self, r: &Value, key: (String, String, u64), care_area: &str, at: &str) {
        let programme = r.get("programme").unwrap_or(&Value::Null);
        let bolus = programme.pointer("/delivery/kind").and_then(Value::as_str) == Some("bolus");
        if bolus {
            self.programmes.boluses += 1;
            self.day(at).boluses += 1;
        } else {
            self.programmes.infusions += 1;
            self.day(at).infusions += 1;
        }
        self.programmes.total += 1;
        let area = self.area(care_area);
        area.programmes += 1;
        self.open.insert(
            key,
            Open {
                bolus,
                drug: text(programme, "drug").to_owned(),
                care_area: care_area.to_owned(),
                soft: Vec::new(),
            },
        );
    }

    /// The day (UTC) of a record's time.
    fn day(&mut self, at: &str) -> &mut Day {
        let name = at.get(..10).unwrap_or(at).to_owned();
        let d = self.days.entry(name.clone()).or_default();
        d.day = name;
        d
    }

    fn area(&mut self, care_area: &str) -> &mut Area {
        let a = self.areas.entry(care_area.to_owned()).or_default();
        care_area.clone_into(&mut a.care_area);
        a
    }

    fn verdict(&mut self, r: &Value, key: &(String, String, u64), at: &str) {
        let Some(open) = self.open.get_mut(key) else {
            return; // its request was before the period
        };
        let (drug, care_area) = (open.drug.clone(), open.care_area.clone());
        if !open.bolus {
            self.checked_infusions += 1;
        }
        let reasons: Vec<Value> = r
            .get("reasons")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        open.soft = reasons
            .iter()
            .filter(|x| text(x, "outcome") == "soft_limit")
            .map(limit_of)
            .collect();
        let outcome = text(r, "outcome");
        let alert = match outcome {
            "soft_limit" => Some(&mut self.alerts.soft_limit),
            "hard_limit" => Some(&mut self.alerts.hard_limit),
            "block" => Some(&mut self.alerts.block),
            _ => None,
        };
        if let Some(n) = alert {
            *n += 1;
            self.alerts.total += 1;
            self.day(at).alerts += 1;
        }
        let area = self.area(&care_area);
        area.checked += 1;
        area.alerts += u64::from(outcome != "pass");
        if outcome == "hard_limit" {
            for x in reasons
                .iter()
                .filter(|x| text(x, "outcome") == "hard_limit")
            {
                *self
                    .hard
                    .entry((drug.clone(), care_area.clone(), limit_of(x)))
                    .or_insert(0) += 1;
            }
        }
        let code_is = |c: &str| reasons.iter().any(|x| text(x, "code") == c);
        if code_is("CONCENTRATION_NOT_IN_LIBRARY") {
            self.caught.not_in_library += 1;
            self.caught.total += 1;
        }
        if reasons.iter().any(|x| {
            text(x, "code") == "ORDER_MISMATCH" && text(x, "limit") == "order.concentration"
        }) {
            self.caught.order_mismatch += 1;
            self.caught.total += 1;
        }
    }

    fn confirmed(&mut self, r: &Value, key: &(String, String, u64)) {
        let stage = text(r, "stage");
        let roles: Vec<String> = r
            .get("by")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|id| {
                self.roles
                    .get(&(key.0.clone(), id.to_owned()))
                    .cloned()
                    .unwrap_or_else(|| "unknown".to_owned())
            })
            .collect();
        if matches!(stage, "bolus" | "bolus_override") {
            self.boluses.confirmed += 1;
            self.boluses.by_doctor += u64::from(roles.iter().any(|x| x == "doctor"));
        }
        if !matches!(stage, "override" | "bolus_override") {
            return;
        }
        let Some(open) = self.open.get(key) else {
            return;
        };
        let (drug, care_area, soft) =
            (open.drug.clone(), open.care_area.clone(), open.soft.clone());
        self.overrides += 1;
        self.area(&care_area).overrides += 1;
        let role = if roles.is_empty() {
            "unknown".to_owned()
        } else {
            roles.join(" + ")
        };
        let reason = r
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("(none given)")
            .to_owned();
        for limit in soft {
            *self
                .overrides_by
                .entry((
                    drug.clone(),
                    care_area.clone(),
                    limit.clone(),
                    role.clone(),
                    reason.clone(),
                ))
                .or_insert(0) += 1;
            *self
                .most
                .entry((drug.clone(), care_area.clone(), limit))
                .or_insert(0) += 1;
        }
    }

    fn library_state(&mut self, r: &Value, kind: &str, gateway: &str, pump: &str, at: &str) {
        let Some(at) = parse_time(at) else {
            return;
        };
        let (from, to) = (self.from, self.to);
        // An episode counts for the part of it within the period.
        let close = |p: &mut PumpState| {
            if let Some(since) = p.off_since.take() {
                let (start, end) = (since.max(from), at.min(to));
                if end > start {
                    p.seconds += (end - start).whole_seconds();
                    p.episodes += 1;
                }
            }
        };
        if kind == "library_activated" {
            // Every online pump of the gateway runs the old one now.
            for ((g, _), p) in self.pumps.range_mut((gateway.to_owned(), String::new())..) {
                if g != gateway {
                    break;
                }
                if p.online && p.off_since.is_none() {
                    p.off_since = Some(at);
                }
            }
            return;
        }
        let p = self
            .pumps
            .entry((gateway.to_owned(), pump.to_owned()))
            .or_default();
        match kind {
            "link_up" => p.online = true,
            "link_down" => {
                close(p);
                p.online = false;
            }
            _ => {
                if r.get("matches").and_then(Value::as_bool) == Some(true) {
                    close(p);
                } else if p.off_since.is_none() {
                    p.off_since = Some(at);
                }
            }
        }
    }

    /// The figures.
    pub fn finish(mut self) -> Figures {
        let (from, to) = (self.from, self.to);
        for p in self.pumps.values_mut() {
            if let Some(since) = p.off_since.take() {
                let start = since.max(from);
                if to > start {
                    p.seconds += (to - start).whole_seconds();
                    p.episodes += 1;
                }
            }
        }
        let sorted = |m: BTreeMap<(String, String, String), u64>| {
            let mut rows: Vec<Row> = m
                .into_iter()
                .map(|((drug, care_area, limit), count)| Row {
                    drug,
                    care_area,
                    limit,
                    role: None,
                    reason: None,
                    count,
                })
                .collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.count));
            rows
        };
        let mut overrides_by: Vec<Row> = self
            .overrides_by
            .into_iter()
            .map(|((drug, care_area, limit, role, reason), count)| Row {
                drug,
                care_area,
                limit,
                role: Some(role),
                reason: Some(reason),
                count,
            })
            .collect();
        overrides_by.sort_by_key(|r| std::cmp::Reverse(r.count));
        let mut most = sorted(self.most);
        most.truncate(10);
        self.alerts.per_100_programmes = percent(self.alerts.total, self.programmes.total);
        let total = self.programmes.infusions;
        let checked = self.checked_infusions;
        Figures {
            scope: self.scope,
            records: self.records,
            gateways: self.gateways.len() as u64,
            under_library: UnderLibrary {
                checked,
                total,
                percent: percent(checked, total),
                meets_ismp_95: total > 0 && checked * 100 >= total * 95,
            },
            programmes: self.programmes,
            alerts: self.alerts,
            overrides: self.overrides,
            overrides_by,
            hard_limit_stops: sorted(self.hard),
            concentrations_caught: self.caught,
            boluses_confirmed: self.boluses,
            pumps_off_library: self
                .pumps
                .into_iter()
                .filter(|(_, p)| p.episodes > 0)
                .map(|((key, pump), p)| {
                    let (site, gateway) = match key.split_once('/') {
                        Some((s, g)) => (Some(s.to_owned()), g.to_owned()),
                        None => (None, key),
                    };
                    PumpOff {
                        site,
                        gateway,
                        pump,
                        episodes: p.episodes,
                        seconds: u64::try_from(p.seconds).unwrap_or(0),
                    }
                })
                .collect(),
            most_overridden: most,
            by_care_area: self.areas.into_values().collect(),
            per_day: self.days.into_values().collect(),
        }
    }
}
