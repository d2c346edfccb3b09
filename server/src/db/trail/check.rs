//! The trail's part of `Store::check`: every audit sequence number once, in
//! order, up to the audit head; each record filed in its indexes (or
//! listed by the commune records it names) and each index entry pointing at
//! a record it names; every push's results with
//! their digests, filed under its device.

use std::collections::BTreeSet;

use fieldsync::DeviceId;

use super::super::check::{show, Problems};
use super::super::commune::Reader;
use super::super::schema::{
    decode_named, read_u64, CommuneRecord, Key, PushRef, Pushed, Write, AUDIT_SEQ_KEY, COMMUNES,
    META, WRITES, WRITES_BY_DEVICE, WRITES_BY_PLACE, WRITES_BY_USER,
};
use super::super::{Result, Store};
use super::{named_by_place, Trail, RECORD_CHUNK};

impl Store {
    /// The trail, its indexes and the pushes' results.
    pub(in crate::db) fn check_trail(&self, problems: &mut Problems) -> Result<()> {
        let head = match Key::Meta(AUDIT_SEQ_KEY).get(self.engine.as_ref())? {
            None => 0,
            Some(bytes) => read_u64(META, &bytes).unwrap_or_else(|_| {
                problems.add("the audit head (meta `audit_seq`) is not an 8-byte number".into());
                0
            }),
        };
        let mut expected = 1u64;
        let mut filed = Filed::default();
        let mut records = Reader::new(self.engine.as_ref());
        for entry in self.engine.iter_all(WRITES).chunk(RECORD_CHUNK) {
            let (key, value) = entry?;
            let Ok(seq) = read_u64(WRITES, &key) else {
                problems.add(format!("audit key {} is not a sequence number", show(&key)));
                continue;
            };
            if seq > expected {
                problems.add(format!(
                    "the audit trail has a gap: entry {seq} follows {}",
                    expected - 1
                ));
            } else if seq < expected {
                problems.add(format!("audit entry {seq} is held twice"));
            }
            expected = seq.saturating_add(1);
            let Ok(write) = Write::decode(&value) else {
                problems.add(format!("the audit entries from {seq} cannot be read"));
                continue;
            };
            if write.entries.is_empty() {
                problems.add(format!("the audit record {seq} holds no entry"));
            }
            for (n, e) in (seq..).zip(&write.entries) {
                if e.seq != n {
                    problems.add(format!("audit entry {n} says it is entry {}", e.seq));
                }
            }
            expected = seq.saturating_add(write.entries.len().max(1) as u64);
            self.check_filed(problems, seq, &write, &mut filed, &mut records)?;
        }
        let last = expected - 1;
        if last != head {
            problems.add(format!(
                "the audit head (meta `audit_seq`) is {head} but the last audit entry is {last}"
            ));
        }
        self.check_indexes(problems, &filed)?;
        self.check_listed(problems, filed.in_records)?;
        self.check_runs(problems)
    }

    /// A record's entries in both indexes, and its push under its device.
    fn check_filed(
        &self,
        problems: &mut Problems,
        seq: u64,
        write: &Write,
        filed: &mut Filed,
        records: &mut Reader<'_>,
    ) -> Result<()> {
        let engine = self.engine.as_ref();
        let users: BTreeSet<&str> = write.entries.iter().map(|e| e.user_id.as_str()).collect();
        let places = match named_by_place(&write.entries, &self.catalogue()) {
            Ok(places) => places,
            Err(e) => {
                problems.add(format!("the audit entries from {seq}: {e}"));
                Default::default()
            }
        };
        filed.by_user += users.len();
        for user in users {
            if Key::WriteByUser(user.to_owned(), seq).get(engine)?.is_none() {
                problems.add(format!(
                    "the audit entries from {seq} by {user:?} are missing from the index by user"
                ));
            }
        }
        for ((commune, period), named) in places {
            let place = (commune.clone(), period);
            let indexed = Key::WriteAtPlace(commune.clone(), period, seq).get(engine)?;
            // A record that cannot be read is reported with the records.
            let record = records.record(&place).ok();
            let listed = record.as_ref().and_then(|r| r.writes.iter().find(|(s, _)| *s == seq));
            filed.by_place += usize::from(indexed.is_some());
            filed.in_records += usize::from(listed.is_some());
            if indexed.is_some() && listed.is_some() {
                problems.add(format!(
                    "the audit entries from {seq} are filed twice for ({commune:?}, {period}): in \
                     the index by place and in the commune record"
                ));
            }
            let indexed = indexed.and_then(|b| decode_named(&b).ok()).unwrap_or_default();
            let listed = listed.map(|(_, subs)| subs.clone()).unwrap_or_default();
            let held: BTreeSet<_> = indexed.into_iter().chain(listed).collect();
            for sub in named.difference(&held) {
                problems.add(format!(
                    "the audit entries from {seq} about report {sub} are missing from the index \
                     by place ({commune:?}, {period})"
                ));
            }
            for sub in held.difference(&named) {
                problems.add(format!(
                    "the index by place ({commune:?}, {period}) lists report {sub} under the \
                     audit entries from {seq}, which do not name it"
                ));
            }
        }
        let Some(push) = &write.push else { return Ok(()) };
        let name = format!("the push at audit entry {seq} (device {})", push.device);
        check_results(problems, &name, push);
        let filed = Key::PushOf(push.device, push.first_id).get(engine)?;
        if filed.map(|b| PushRef::decode(&b)).transpose().ok().flatten()
            != Some(PushRef::Trail(seq))
        {
            problems.add(format!(
                "{name} is not filed under its device and first mutation id {}: its replays \
                 would not find their results",
                push.first_id
            ));
        }
        Ok(())
    }

    /// Each index entry points at a record holding an entry it names. Every
    /// record's own entries were found in the indexes, so an index holding
    /// as many entries as the records name holds no other: only then is
    /// each entry looked at (reading its record).
    fn check_indexes(&self, problems: &mut Problems, filed: &Filed) -> Result<()> {
        let indexes =
            [(WRITES_BY_PLACE, "report", filed.by_place), (WRITES_BY_USER, "user", filed.by_user)];
        for (tree, what, named) in indexes {
            let mut held = 0;
            self.each_entry(tree, |_, _| {
                held += 1;
                Ok(())
            })?;
            if held == named {
                continue;
            }
            // The record read last, as index entries of one write often follow one another.
            let mut last: Option<(u64, Option<Write>)> = None;
            self.each_entry(tree, |key, value| {
                let decoded = Key::decode(tree, key);
                let (seq, trails) = match &decoded {
                    Ok(Key::WriteAtPlace(commune, period, seq)) => match decode_named(value) {
                        Ok(subs) => (
                            *seq,
                            subs.into_iter().map(|s| Trail::Of(commune, *period, s)).collect(),
                        ),
                        Err(e) => {
                            problems.add(format!("{tree} entry {}: {e}", show(key)));
                            return Ok(());
                        }
                    },
                    Ok(Key::WriteByUser(user, seq)) => (*seq, vec![Trail::By(user)]),
                    _ => {
                        problems.add(format!("{tree} key {} is malformed", show(key)));
                        return Ok(());
                    }
                };
                if last.as_ref().is_none_or(|(s, _)| *s != seq) {
                    let record = Key::Write(seq).get(self.engine.as_ref())?;
                    let write = match record.map(|b| Write::decode(&b)) {
                        None => {
                            problems.add(format!(
                                "the audit index by {what} ({tree}) points at audit entry {seq}, \
                                 which does not exist"
                            ));
                            None
                        }
                        Some(w) => w.ok(), // one that cannot be read is reported with the trail
                    };
                    last = Some((seq, write));
                }
                if let Some((_, Some(w))) = &last {
                    if trails.iter().any(|t| !w.entries.iter().any(|e| t.holds(e))) {
                        problems.add(format!(
                            "the audit index by {what} ({tree}) points at audit entry {seq}, \
                             whose write holds no entry of that {what}"
                        ));
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Each write a commune record lists names reports there: as many are
    /// listed as the trail's records were found listed by, or each is
    /// looked at (reading its write).
    fn check_listed(&self, problems: &mut Problems, found: usize) -> Result<()> {
        let mut listed = 0;
        self.each_entry(COMMUNES, |_, value| {
            listed += CommuneRecord::decode(value).map_or(0, |r| r.writes.len());
            Ok(())
        })?;
        if listed == found {
            return Ok(());
        }
        self.each_entry(COMMUNES, |key, value| {
            let (Ok(Key::Commune(commune, period)), Ok(record)) =
                (Key::decode(COMMUNES, key), CommuneRecord::decode(value))
            else {
                return Ok(()); // reported with the records
            };
            for (seq, subs) in &record.writes {
                let write = Key::Write(*seq).get(self.engine.as_ref())?;
                let write = write.and_then(|b| Write::decode(&b).ok());
                let names = |sub| {
                    let trail = Trail::Of(&commune, period, sub);
                    write.as_ref().is_some_and(|w| w.entries.iter().any(|e| trail.holds(e)))
                };
                if let Some(sub) = subs.iter().find(|&&sub| !names(sub)) {
                    problems.add(format!(
                        "the record of {commune:?} for {period} lists audit entries from {seq} \
                         about report {sub}, but no such entry is there"
                    ));
                }
            }
            Ok(())
        })
    }

    /// Each run a replay may read: a push's record, or results an earlier
    /// layout kept; runs of one device do not overlap and lie within its ids.
    fn check_runs(&self, problems: &mut Problems) -> Result<()> {
        let mut before: Option<(DeviceId, u64)> = None;
        self.each_entry(WRITES_BY_DEVICE, |key, value| {
            let Ok(Key::PushOf(device, first)) = Key::decode(WRITES_BY_DEVICE, key) else {
                problems.add(format!("{WRITES_BY_DEVICE} key {} is malformed", show(key)));
                return Ok(());
            };
            let name = format!("the results of device {device} from mutation {first}");
            let len = match PushRef::decode(value) {
                Err(_) => {
                    problems.add(format!("{name} cannot be read"));
                    return Ok(());
                }
                Ok(PushRef::Trail(seq)) => {
                    let record = Key::Write(seq).get(self.engine.as_ref())?;
                    let push = record.and_then(|b| Write::decode(&b).ok()).and_then(|w| w.push);
                    match push {
                        Some(p) if p.device == device && p.first_id == first => p.digests.len(),
                        _ => {
                            problems.add(format!(
                                "{name} point at audit entry {seq}, which is not that push"
                            ));
                            return Ok(());
                        }
                    }
                }
                Ok(PushRef::Kept { digests, results }) => {
                    let ids =
                        results.iter().zip(first..).flat_map(|(r, n)| r.as_ref().zip(Some(n)));
                    if digests.len() != results.len() || digests.is_empty() {
                        problems.add(format!(
                            "{name} hold {} result(s) but {} digest(s)",
                            results.len(),
                            digests.len()
                        ));
                    } else if ids.into_iter().any(|(r, n)| r.id != n) {
                        problems.add(format!("{name} are not numbered from {first}"));
                    }
                    digests.len()
                }
            };
            let end = first + len.max(1) as u64 - 1;
            if let Some((d, last)) = before.filter(|(d, _)| *d == device) {
                if first <= last {
                    problems.add(format!("{name} overlap those kept before, up to {last} ({d})"));
                }
            }
            before = Some((device, end));
            let last_id = self.device(device)?.last_mutation_id;
            if end > last_id {
                problems.add(format!(
                    "{name} reach mutation {end}, past the device's last ({last_id})"
                ));
            }
            Ok(())
        })
    }
}

/// How many index entries the records name, found while walking them,
/// and how many commune records were found listing them.
#[derive(Default)]
struct Filed {
    by_user: usize,
    by_place: usize,
    in_records: usize,
}

/// A push holds a digest for every result, numbered from its first id.
fn check_results(problems: &mut Problems, name: &str, push: &Pushed) {
    if push.digests.len() != push.results.len() || push.results.is_empty() {
        problems.add(format!(
            "{name} holds {} result(s) but {} digest(s): a replay could not be told from a \
             different mutation",
            push.results.len(),
            push.digests.len()
        ));
    }
    for (r, n) in push.results.iter().zip(push.first_id..) {
        if r.id != n {
            problems.add(format!("{name}: result {} stands where mutation {n} belongs", r.id));
            break;
        }
    }
}
