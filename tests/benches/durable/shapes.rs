//! What the durable bench pushes, planned before the clock starts: the
//! worst case (every value a note opening a report of its own) and the
//! realistic session (a commune's surveyor sending its villages' reports,
//! ~13 values each, and coming back to some of them); and [`Counted`], the
//! sled engine that counts the records the server writes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, Hlc, Level};
use fieldsync_store::{sled_entries, Hooked, Sled};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// One tablet's pushes, in order; each push is one batch.
pub type Session = Vec<Vec<Mutation>>;

/// What the sled engine handed to the server wrote: the records (puts and
/// deletes) of every batch and their bytes (key and value), by tree, and
/// the batches.
#[derive(Default)]
pub struct Tally {
    batches: AtomicU64,
    by_tree: Mutex<BTreeMap<&'static str, (u64, u64)>>,
}

impl Tally {
    /// (records, batches) written so far.
    pub fn written(&self) -> (u64, u64) {
        let records = self.by_tree.lock().expect("tally").values().map(|(n, _)| n).sum();
        (records, self.batches.load(Ordering::Relaxed))
    }

    /// The records and bytes written so far in each tree, most records
    /// first.
    pub fn by_tree(&self) -> Vec<(&'static str, u64, u64)> {
        let trees = self.by_tree.lock().expect("tally").clone();
        let mut trees: Vec<_> = trees.into_iter().map(|(t, (n, b))| (t, n, b)).collect();
        trees.sort_by_key(|(_, n, _)| std::cmp::Reverse(*n));
        trees
    }
}

/// The sled engine, counting what it writes.
pub type Counted = Hooked<Tally>;

pub fn counted(inner: Sled) -> Counted {
    Hooked::new(Arc::new(inner), Tally::default(), |tally, batch| {
        // Long values take more than one sled entry (the engine's pieces).
        let mut by_tree = tally.by_tree.lock().expect("tally");
        for (tree, key, value) in batch.writes() {
            let (records, bytes) = by_tree.entry(tree).or_default();
            *records += value.map_or(1, |v| sled_entries(v.len()));
            *bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        }
        tally.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
}

/// A surveyor's note of about 200 bytes.
pub fn note(k: usize) -> String {
    let mut text = format!(
        "Ghi chú {k}: đường thôn đã đổ bê tông, rãnh thoát nước nạo vét xong; \
         còn thiếu sân thể thao"
    );
    while text.len() < super::NOTE_BYTES {
        text.push('.');
    }
    text
}

/// The villages of `commune`, or every village in id order.
fn villages_of(commune: Option<&str>) -> Vec<String> {
    let catalogue = demo::catalogue();
    let units: Vec<_> = match commune {
        Some(c) => catalogue.units_at(Level::Village, Some(c)),
        None => catalogue.org_units.values().filter(|u| u.level == Level::Village).collect(),
    };
    units.iter().map(|u| u.id.clone()).collect()
}

/// Distinct note cells, numbered from 0: every village, then the next period.
pub struct Cells {
    pub villages: Vec<String>,
    pub periods: Vec<String>,
}

impl Cells {
    pub fn new(periods: Vec<String>) -> Cells {
        Cells { villages: villages_of(None), periods }
    }

    pub fn capacity(&self) -> usize {
        self.villages.len() * self.periods.len()
    }

    /// The worst case's mutation `id` of cell `k`: a note opening a report.
    pub fn note(&self, k: usize, id: u64, author: &str) -> Mutation {
        let v = &self.villages[k % self.villages.len()];
        let p = &self.periods[(k / self.villages.len()) % self.periods.len()];
        let value = RawValue::Text(note(k));
        plain(id, v, p, "note", value, author)
    }

    /// `per` notes from cell `first` on, in pushes of `batch`.
    pub fn session(&self, first: usize, per: usize, batch: usize, author: &str) -> Session {
        let all: Vec<Mutation> =
            (0..per).map(|i| self.note(first + i, i as u64 + 1, author)).collect();
        all.chunks(batch).map(<[Mutation]>::to_vec).collect()
    }
}

fn plain(
    id: u64,
    village: &str,
    period: &str,
    field: &str,
    value: RawValue,
    who: &str,
) -> Mutation {
    Mutation {
        id,
        village_id: village.to_owned(),
        period: period.to_owned(),
        field: field.to_owned(),
        value,
        base_version: 0,
        hlc: Hlc(0),
        author: who.to_owned(),
    }
}

/// The fields of a village's report, wholes before their "of which" parts:
/// every indicator of the catalogue and the note.
pub const REPORT: [&str; 13] = [
    "road_km",
    "road_cement_km",
    "drainage_km",
    "canal_km",
    "canal_cement_km",
    "commune_cultural_house",
    "commune_sports_area",
    "village_cultural_house",
    "village_sports_area",
    "playground",
    "smart_house_library",
    "model_residential_area",
    "note",
];

/// Fields a surveyor corrects later: neither a whole nor a part, so an
/// edit never breaks an "of which" check.
const EDITED: [&str; 9] = [
    "drainage_km",
    "commune_cultural_house",
    "commune_sports_area",
    "village_cultural_house",
    "village_sports_area",
    "playground",
    "smart_house_library",
    "model_residential_area",
    "note",
];

/// The value of `field` in report `k` after `round` corrections (parts
/// below their wholes, counts within the village maximum).
fn value(field: &str, k: usize, round: usize) -> RawValue {
    let km = |whole: usize| format!("{}.{:02}", whole, k % 100);
    let count = |max: usize| ((k + round) % (max + 1)).to_string();
    RawValue::Amount(match field {
        "road_km" | "canal_km" => km(10 + k % 150),
        "road_cement_km" | "canal_cement_km" => km((10 + k % 150) / 2),
        "drainage_km" => format!("{}.{:02}", (k + 7 * round) % 150, (k + round) % 100),
        "commune_cultural_house" | "commune_sports_area" => count(5),
        "playground" => count(20),
        "note" => {
            return RawValue::Text(format!("Thôn đã hoàn thành {} hạng mục (lần {round}).", k % 9))
        }
        _ => count(10),
    })
}

/// The communes whose surveyors push, each handing out its reports
/// (village × period) once, so no two tablets write the same report.
pub struct Communes {
    pub ids: Vec<String>,
    villages: Vec<Vec<String>>,
    periods: Vec<String>,
    next: Vec<usize>,
}

impl Communes {
    pub fn new(periods: Vec<String>) -> Communes {
        let catalogue = demo::catalogue();
        let ids: Vec<String> =
            catalogue.units_at(Level::Commune, None).iter().map(|u| u.id.clone()).collect();
        let villages = ids.iter().map(|c| villages_of(Some(c))).collect();
        let next = vec![0; ids.len()];
        Communes { ids, villages, periods, next }
    }

    /// The commune of tablet `t`.
    pub fn of(&self, t: usize) -> usize {
        t % self.ids.len()
    }

    /// A report of commune `c` nobody has written yet: (village, period, k).
    fn fresh(&mut self, c: usize) -> anyhow::Result<(String, String, usize)> {
        let (vs, i) = (&self.villages[c], self.next[c]);
        let period = self.periods.get(i / vs.len()).ok_or_else(|| {
            anyhow::anyhow!("commune {} has no report left: fewer values, please", self.ids[c])
        })?;
        self.next[c] += 1;
        Ok((vs[i % vs.len()].clone(), period.clone(), c * 1_000_003 + i))
    }
}

/// A report the tablet wrote: where, its number, its corrections so far.
struct Written {
    village: String,
    period: String,
    k: usize,
    rounds: usize,
}

/// `per` values of the surveyor of commune `c`: pushes of 5-8 reports,
/// each a new report of the commune's villages (13 values) or, from the
/// third push on, one time in four, 3-6 corrections of a report sent in
/// an earlier push (the tablet sets their base to the version the server
/// returned). The last push is cut at `per`.
pub fn session(
    rng: &mut StdRng,
    communes: &mut Communes,
    c: usize,
    per: usize,
    author: &str,
) -> anyhow::Result<Session> {
    let mut pushes: Session = Vec::new();
    let mut written: Vec<Written> = Vec::new();
    let mut values = 0;
    while values < per {
        let sent_before = written.len();
        let mut again = HashSet::new();
        let mut push = Vec::new();
        for _ in 0..rng.random_range(5..=8) {
            let revisit = pushes.len() >= 2 && rng.random_bool(0.25);
            let r = rng.random_range(0..sent_before.max(1));
            if revisit && again.insert(r) {
                let w = &mut written[r];
                w.rounds += 1;
                let mut fields = EDITED;
                fields.shuffle(rng);
                for f in &fields[..rng.random_range(3..=6)] {
                    let v = value(f, w.k, w.rounds);
                    push.push(plain(0, &w.village, &w.period, f, v, author));
                }
            } else {
                let (village, period, k) = communes.fresh(c)?;
                for f in REPORT {
                    push.push(plain(0, &village, &period, f, value(f, k, 0), author));
                }
                written.push(Written { village, period, k, rounds: 0 });
            }
        }
        push.truncate(per - values);
        for m in &mut push {
            values += 1;
            m.id = values as u64;
        }
        pushes.push(push);
    }
    Ok(pushes)
}
