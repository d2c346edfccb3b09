//! The typed keys encode to exactly the bytes the store has always written,
//! and read back to what they were made from.

use super::*;
use fieldsync::sync::{MutationResult, Outcome};

fn sub() -> SubmissionId {
    SubmissionId(uuid::Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10))
}

fn device() -> DeviceId {
    DeviceId(uuid::Uuid::from_u128(0xa0a1_a2a3_a4a5_a6a7_a8a9_aaab_acad_aeaf))
}

const SUB: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const DEVICE: [u8; 16] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Every key shape, with the bytes the store wrote before keys were typed.
fn pinned() -> Vec<(Key, Vec<u8>)> {
    let road = FieldKey::parse("road_km");
    vec![
        (Key::Meta(SEQ_KEY), b"seq".to_vec()),
        (Key::Meta(BY_COMMUNE_KEY), b"submissions_by_commune".to_vec()),
        (Key::Field(sub(), road.clone()), cat(&[&SUB, b"road_km"])),
        (Key::Conflict(sub(), road.clone()), cat(&[&SUB, b"road_km"])),
        (
            Key::Revision(sub(), road.clone(), 258),
            cat(&[&SUB, b"road_km\0", &[0, 0, 0, 0, 0, 0, 1, 2]]),
        ),
        (Key::Submission(sub()), SUB.to_vec()),
        (Key::Commune("ht.hk.x".into(), Period::Month(2022, 3)), b"ht.hk.x\x002022-03".to_vec()),
        (Key::Place(sub()), SUB.to_vec()),
        (Key::Conflicted(sub(), road.clone()), cat(&[&SUB, b"road_km"])),
        (
            Key::History("ht.hk.x".into(), Period::Year(2022), 7),
            cat(&[b"ht.hk.x\x002022\x00", &[0, 0, 0, 0, 0, 0, 0, 7]]),
        ),
        (Key::Change(7), vec![0, 0, 0, 0, 0, 0, 0, 7]),
        (Key::CommuneChange("ht.hk.x".into(), 7), cat(&[b"ht.hk.x\0", &[0, 0, 0, 0, 0, 0, 0, 7]])),
        (Key::CommuneChange(String::new(), 1), vec![0, 0, 0, 0, 0, 0, 0, 0, 1]),
        (Key::Device(device()), DEVICE.to_vec()),
        // The earlier layout's, read by its migration.
        (Key::Result(device(), 3), cat(&[&DEVICE, &[0, 0, 0, 0, 0, 0, 0, 3]])),
        (Key::Digest(device(), 3), cat(&[&DEVICE, &[0, 0, 0, 0, 0, 0, 0, 3]])),
        (Key::Audit(1 << 40), vec![0, 0, 1, 0, 0, 0, 0, 0]),
        (Key::Write(1 << 40), vec![0, 0, 1, 0, 0, 0, 0, 0]),
        (
            Key::WriteAtPlace("ht.hk.x".into(), Period::Year(2022), 9),
            cat(&[b"ht.hk.x\x002022\0", &[0, 0, 0, 0, 0, 0, 0, 9]]),
        ),
        (Key::WriteByUser("an".into(), 9), cat(&[b"an\0", &[0, 0, 0, 0, 0, 0, 0, 9]])),
        (Key::PushOf(device(), 258), cat(&[&DEVICE, &[0, 0, 0, 0, 0, 0, 1, 2]])),
        (Key::Closed("ha-tinh".into(), "2022-Q3".parse().unwrap()), b"ha-tinh\x002022-Q3".to_vec()),
        (Key::Closed("ha-tinh".into(), "2022-07".parse().unwrap()), b"ha-tinh\x002022-07".to_vec()),
        (Key::User("an".into()), b"an".to_vec()),
        (Key::Token(vec![0xde, 0xad]), vec![0xde, 0xad]),
        (Key::TokenId("t1".into()), b"t1".to_vec()),
        (Key::Enrollment(vec![0xbe, 0xef]), vec![0xbe, 0xef]),
        (Key::EnrollmentId("e1".into()), b"e1".to_vec()),
        (Key::EnrollmentByUser("an".into(), "e1".into()), b"an\0e1".to_vec()),
        (
            Key::Rollup("2022".parse().unwrap(), "ha-tinh".into(), "road_km".into()),
            b"2022\0ha-tinh\0road_km".to_vec(),
        ),
        (Key::Totals("2022-Q3".parse().unwrap(), "ha-tinh".into()), b"2022-Q3\0ha-tinh".to_vec()),
        (
            Key::Plan("2022-Q1".parse().unwrap(), "ha-tinh".into(), "road_km".into()),
            b"2022-Q1\0ha-tinh\0road_km".to_vec(),
        ),
    ]
}

#[test]
fn keys_encode_to_the_bytes_on_disk() {
    for (key, bytes) in pinned() {
        assert_eq!(key.encode(), bytes, "{key:?}");
    }
}

#[test]
fn keys_read_back_to_what_they_were_made_from() {
    for (key, bytes) in pinned() {
        if let Key::Meta(_) = key {
            continue;
        }
        assert_eq!(Key::decode(key.tree(), &bytes).unwrap(), key, "{bytes:?}");
    }
}

#[test]
fn entities_keep_their_postcard_bytes() {
    // The variant's index, then the 16 bytes of the id (a length, then the
    // bytes), then the field key (its own tag, then a length-prefixed string).
    let field = Entity::Field(sub(), FieldKey::parse("road_km"));
    assert_eq!(field.key(), cat(&[&[0, 16], &SUB, &[0, 7], b"road_km"]));
    assert_eq!(Entity::Review(sub()).key(), cat(&[&[2, 16], &SUB]));
}

#[test]
fn log_entries_list_a_commits_changes_and_old_entries_read_as_one_change() {
    let road = Entity::Field(sub(), FieldKey::parse("road_km"));
    let entry = LogEntry(vec![(300, road.clone()), (301, Entity::Review(sub()))]);
    // The version (3: after the three shapes of old entries), the number of
    // changes, then each change's sequence number (a varint) and entity.
    let bytes = entry.encode();
    let expected =
        cat(&[&[3, 2, 0xac, 0x02], &road.key(), &[0xad, 0x02], &Entity::Review(sub()).key()]);
    assert_eq!(bytes, expected);
    assert_eq!(LogEntry::decode(CHANGES, 301, &bytes).unwrap(), (entry, false));
    // An entry as the log wrote it when it moved entities to its head: the
    // entity's bytes alone, changed at the entry's own number.
    for old in [road, Entity::Conflict(sub(), FieldKey::Note), Entity::Review(sub())] {
        let read = LogEntry::decode(CHANGES, 7, &old.key()).unwrap();
        assert_eq!(read, (LogEntry(vec![(7, old)]), true));
    }
    assert!(LogEntry::decode(CHANGES, 7, &[5, 0]).is_err());
    assert!(PlacedEntry::decode(CHANGES, 301, &bytes).unwrap().is_none(), "it names no places");
}

#[test]
fn log_entries_name_their_reports_places() {
    let road = Entity::Field(sub(), FieldKey::parse("road_km"));
    let place = ("c1".to_owned(), "2022".parse().unwrap());
    let changes = vec![(300, road.clone(), place.clone()), (301, Entity::Review(sub()), place)];
    let entry = PlacedEntry::of(changes.clone());
    // The version (4), the number of places, each place (its commune, its
    // period) with its changes as in the earlier version.
    let bytes = entry.encode_v2();
    let period = super::encode(&"2022".parse::<fieldsync::Period>().unwrap());
    let expected = cat(&[
        &[4, 1, 2],
        b"c1",
        &period,
        &[2, 0xac, 0x02],
        &road.key(),
        &[0xad, 0x02],
        &Entity::Review(sub()).key(),
    ]);
    assert_eq!(bytes, expected);
    assert_eq!(PlacedEntry::decode(CHANGES, 301, &bytes).unwrap().unwrap().changes(), changes);
    // Read without its places, as the migrations before it read the log.
    let (listed, old) = LogEntry::decode(CHANGES, 301, &bytes).unwrap();
    assert_eq!((listed.0.len(), old), (2, false));
    // Version 5 says the report once, each change's number back from the
    // last (the field names in a table): the same listing, shorter.
    let compact = entry.encode();
    assert_eq!(compact[0], 5);
    assert!(compact.len() + 10 <= bytes.len(), "{} against {}", compact.len(), bytes.len());
    assert_eq!(PlacedEntry::decode(CHANGES, 301, &compact).unwrap().unwrap().changes(), changes);
    assert_eq!(LogEntry::decode(CHANGES, 301, &compact).unwrap().0 .0.len(), 2);
}

#[test]
fn a_compact_log_entry_reads_back_every_place_report_and_change() {
    let (a, b) = (sub(), SubmissionId(uuid::Uuid::from_u128(9)));
    let p1 = ("c1".to_owned(), "2022".parse().unwrap());
    let p2 = ("c2".to_owned(), "2022-03".parse().unwrap());
    let road = FieldKey::parse("road_km");
    let changes = vec![
        (40, Entity::Field(a, road.clone()), p1.clone()),
        (41, Entity::Field(b, FieldKey::Note), p2.clone()),
        (42, Entity::Conflict(a, road.clone()), p1.clone()),
        (43, Entity::Field(b, road.clone()), p2.clone()),
        (44, Entity::Review(b), p2.clone()),
        (45, Entity::Review(a), p1.clone()),
    ];
    let entry = PlacedEntry::of(changes.clone());
    let bytes = entry.encode();
    assert_eq!(bytes[0], 5);
    let read = PlacedEntry::decode(CHANGES_BY_COMMUNE, 45, &bytes).unwrap().unwrap();
    assert_eq!(read, entry);
    assert_eq!(read.changes(), changes);
    // A listing out of order within its place is kept as version 4.
    let odd = PlacedEntry(vec![(p1, vec![(9, Entity::Review(a)), (8, Entity::Review(b))])]);
    assert_eq!(odd.encode()[0], 4);
    assert_eq!(PlacedEntry::decode(CHANGES, 9, &odd.encode()).unwrap().unwrap(), odd);
}

#[test]
fn a_record_with_its_latest_change_reads_as_before() {
    /// Any postcard record: what follows it is the number, whatever it is.
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        version: u64,
        owner: String,
    }
    let record = Record { version: 300, owner: "an".into() };
    let stored = with_seq(encode(&record), 258);
    assert_eq!(stored, [&encode(&record)[..], &[0, 0, 0, 0, 0, 0, 1, 2]].concat());
    assert_eq!(decode::<Record>(CONFLICTS, &stored).unwrap(), record);
    let read = decode_with_seq::<Record>(CONFLICTS, &stored).unwrap();
    assert_eq!(read, (record.clone(), Some(258)));
    let old = decode_with_seq::<Record>(CONFLICTS, &encode(&record)).unwrap();
    assert_eq!(old, (record, None), "a record written before has no number");
    assert!(decode_with_seq::<Record>(CONFLICTS, &[&stored[..], &[1]].concat()).is_err());
}

#[test]
fn records_keep_their_postcard_bytes() {
    // A device record as earlier versions wrote it, then with the versioned
    // tail (variant 0) holding how far its results are released.
    let old = vec![0xac, 0x02, 1, 2, b'a', b'n'];
    let state = DeviceState {
        last_mutation_id: 300,
        last_push_ms: 1,
        owner: "an".into(),
        released_through: 0,
    };
    assert_eq!(DeviceState::decode(&old).unwrap(), state);
    let state = DeviceState { released_through: 299, ..state };
    assert_eq!(state.encode(), cat(&[&old, &[0, 0xab, 0x02]]));
    assert_eq!(DeviceState::decode(&state.encode()).unwrap(), state);
    assert!(DeviceState::decode(&cat(&[&old, &[7]])).is_err(), "an unknown tail");
    let token = TokenInfo {
        id: "t".into(),
        user_id: "u".into(),
        label: String::new(),
        created_ms: 5,
        expires_ms: 0,
        revoked: true,
    };
    assert_eq!(encode(&token), vec![1, b't', 1, b'u', 0, 5, 0, 1]);
    let result = StoredResult {
        digest: [7; 32],
        result: MutationResult {
            id: 1,
            outcome: Outcome::Applied,
            reason: String::new(),
            current: None,
        },
    };
    // The earlier layout's result record: digest, then the result.
    let old = cat(&[&[7; 32], &[1, 0, 0, 0]]);
    assert_eq!(encode(&result), old);
    assert_eq!(decode::<StoredResult>(retired::RESULTS, &old).unwrap(), result);
    // A write's record as first written (variant 0): its entries, then its
    // push (device, first id, digests, results); as written now (variant
    // 1), the push names its author and each result is kept whole
    // (variant 1) or, for a value its audit entry names, by its version.
    let push = Pushed {
        device: device(),
        first_id: 3,
        digests: vec![[7; 32]],
        results: vec![result.result.clone()],
    };
    let write = Write { entries: vec![], push: Some(push) };
    let v1 = cat(&[&[0, 0, 1, 16], &DEVICE, &[3, 1], &[7; 32], &[1, 1, 0, 0, 0]]);
    assert_eq!(Write::decode(&v1).unwrap(), write);
    let bytes = write.encode();
    assert_eq!(bytes, cat(&[&[1, 0, 1, 16], &DEVICE, &[3, 1], &[7; 32], &[0, 1, 1, 1, 0, 0, 0]]));
    assert_eq!(Write::decode(&bytes).unwrap(), write);
    assert_eq!(PushRef::Trail(300).encode(), vec![0, 0, 0xac, 0x02]);
    let kept = PushRef::Kept { digests: vec![[7; 32]], results: vec![None] };
    assert_eq!(kept.encode(), cat(&[&[0, 1, 1], &[7; 32], &[1, 0]]));
    assert_eq!(PushRef::decode(&kept.encode()).unwrap(), kept);
    // A unit's totals (variant 0): its cells by indicator code.
    let cell = fieldsync::rollup::Cell {
        approved: fieldsync::Amount::new(25, 1),
        approved_n: 2,
        conflicts_n: 1,
        ..Default::default()
    };
    let totals = UnitTotals([("km".to_string(), cell)].into());
    let bytes = totals.encode();
    assert_eq!(bytes, vec![0, 1, 2, b'k', b'm', 50, 1, 2, 0, 0, 0, 1]);
    assert_eq!(bytes[5..], encode(&cell), "a cell as the earlier layout kept it");
    assert_eq!(UnitTotals::decode(&bytes).unwrap(), totals);
    let enrollment = Enrollment {
        id: "e".into(),
        user_id: "u".into(),
        user_name: "U".into(),
        created_by: "a".into(),
        created_ms: 1,
        expires_ms: 2,
        revoked: false,
        token_id: String::new(),
    };
    // The version (0: the first) comes before the record.
    let bytes = enrollment.encode();
    assert_eq!(bytes, vec![0, 1, b'e', 1, b'u', 1, b'U', 1, b'a', 1, 2, 0, 0]);
    assert_eq!(Enrollment::decode(&bytes).unwrap(), enrollment);
}

#[test]
fn keys_of_a_tree_sort_as_what_they_name() {
    let seqs = [0u64, 1, 255, 256, 1 << 32, u64::MAX];
    for pair in seqs.windows(2) {
        let (a, b) = (Key::Change(pair[0]).encode(), Key::Change(pair[1]).encode());
        assert!(a < b, "{pair:?}");
        let cut = |s| Key::CommuneChange("c".into(), s).encode();
        assert!(cut(pair[0]) < cut(pair[1]), "{pair:?}");
        let rev = |v| Key::Revision(sub(), FieldKey::parse("road_km"), v).encode();
        assert!(rev(pair[0]) < rev(pair[1]), "{pair:?}");
        let history = |v| Key::History("c".into(), Period::Year(2022), v).encode();
        assert!(history(pair[0]) < history(pair[1]), "{pair:?}");
    }
}

#[test]
fn prefixes_cover_exactly_their_keys() {
    let road = FieldKey::parse("road_km");
    let cases: Vec<(Prefix, Key)> = vec![
        (Prefix::FieldsOf(sub()), Key::Field(sub(), road.clone())),
        (Prefix::ConflictsOf(sub()), Key::Conflict(sub(), road.clone())),
        (
            Prefix::HistoryOf("c", Period::Year(2022)),
            Key::History("c".into(), Period::Year(2022), 4),
        ),
        (Prefix::CommuneRecords("c"), Key::Commune("c".into(), Period::Year(2022))),
        (Prefix::CommuneChanges("c"), Key::CommuneChange("c".into(), 4)),
        (
            Prefix::WritesAt("c", Period::Year(2022)),
            Key::WriteAtPlace("c".into(), Period::Year(2022), 4),
        ),
        (Prefix::WritesBy("an"), Key::WriteByUser("an".into(), 4)),
        (Prefix::EnrollmentsOf("an"), Key::EnrollmentByUser("an".into(), "e".into())),
        (
            Prefix::Cells(PLANS, "2022".parse().unwrap(), "ht"),
            Key::Plan("2022".parse().unwrap(), "ht".into(), "road_km".into()),
        ),
        (Prefix::CellsOfYear(TOTALS, 2022), Key::Totals("2022-Q3".parse().unwrap(), "ht".into())),
        (
            Prefix::CellsOfYear(PLANS, 2022),
            Key::Plan("2022-Q3".parse().unwrap(), "ht".into(), "road_km".into()),
        ),
    ];
    for (prefix, key) in cases {
        assert_eq!(prefix.tree(), key.tree(), "{prefix:?}");
        assert!(key.encode().starts_with(&prefix.encode()), "{prefix:?} {key:?}");
    }
    // A commune's cut does not take in a commune whose id extends it.
    let other = Key::CommuneChange("c2".into(), 1).encode();
    assert!(!other.starts_with(&Prefix::CommuneChanges("c").encode()));
    // A year's history does not take in its months'.
    let month = Key::History("c".into(), Period::Month(2022, 1), 1).encode();
    assert!(!month.starts_with(&Prefix::HistoryOf("c", Period::Year(2022)).encode()));
}

#[test]
fn damaged_keys_are_refused_not_misread() {
    assert!(Key::decode(CHANGES, &[1, 2, 3]).is_err());
    assert!(Key::decode(FIELDS, &[1, 2, 3]).is_err());
    assert!(Key::decode(CHANGES_BY_COMMUNE, b"c1234567").is_err());
    assert!(Key::decode(SUBMISSIONS_BY_COMMUNE, &SUB).is_err());
    assert!(Key::decode(CLOSED, b"ha-tinh\0not a period").is_err());
}

/// A commune record of two reports: values stamped by two devices, one of
/// them twice, a conflict, a decided review.
fn commune_record() -> CommuneRecord {
    use fieldsync::review::ReviewState;
    use fieldsync::sync::{Conflict, FieldRef, FieldState, Stamp, SubmissionReview};
    use fieldsync::{DeviceId, Hlc, Value};
    let period: Period = "2022".parse().unwrap();
    let stamp = |device: u128, author: &str, hlc: u64| Stamp {
        hlc: Hlc(hlc),
        device: DeviceId(uuid::Uuid::from_u128(device)),
        author: author.into(),
        received_at_ms: 1_700_000_000_000 + hlc,
        mutation_id: hlc,
    };
    let mut record = CommuneRecord::default();
    for (i, village) in ["ht.vq.hm.thon-1", "ht.vq.hm.thon-2"].into_iter().enumerate() {
        let id = SubmissionId::of(village, period);
        let review = SubmissionReview {
            submission: id,
            village_id: village.into(),
            period,
            state: if i == 0 { ReviewState::Approved } else { ReviewState::Submitted },
            reason: String::new(),
            user_id: "chi".into(),
            user_name: "Chi".into(),
            at_ms: 1_700_000_000_500,
        };
        let header =
            SubmissionHeader { id, village_id: village.into(), period, first_seq: 3, review };
        let mut report = Report::new(header, 9);
        for (field, value, by) in [("road_km", "1.5", (1, "An")), ("note", "xong", (2, "Bình"))] {
            let at = FieldRef::new(village, period, FieldKey::parse(field));
            let value = Value::Text(value.into());
            let state =
                FieldState { at, value, version: 4 + i as u64, stamp: stamp(by.0, by.1, 7) };
            report.put_field(&state);
        }
        let at = FieldRef::new(village, period, FieldKey::parse("road_km"));
        let conflict = Conflict {
            at,
            base_value: Value::Deleted,
            base_version: 0,
            candidates: Vec::new(),
            open: true,
            resolution: None,
        };
        report.conflicts.insert(FieldKey::parse("road_km"), (conflict, 8));
        record.reports.insert(id, report);
    }
    record
}

#[test]
fn a_commune_record_says_each_period_village_and_stamper_once_and_reads_back_whole() {
    let record = commune_record();
    let bytes = record.encode();
    assert_eq!(bytes[0], 1, "the compact version");
    assert_eq!(CommuneRecord::decode(&bytes).unwrap(), record);
    // The earlier, whole form still reads, and is longer.
    #[derive(serde::Serialize)]
    struct Reports<'a> {
        reports: &'a std::collections::BTreeMap<SubmissionId, Report>,
    }
    #[derive(serde::Serialize)]
    enum Whole<'a> {
        V1(Reports<'a>),
    }
    let whole = super::encode(&Whole::V1(Reports { reports: &record.reports }));
    assert_eq!(whole[0], 0);
    assert_eq!(CommuneRecord::decode(&whole).unwrap(), record);
    assert!(bytes.len() * 10 < whole.len() * 8, "{} against {} bytes", bytes.len(), whole.len());
    // A record the compact form could not say exactly is kept whole.
    let mut odd = record.clone();
    odd.reports.values_mut().next().unwrap().header.review.village_id = "elsewhere".into();
    let kept = odd.encode();
    assert_eq!(kept[0], 0);
    assert_eq!(CommuneRecord::decode(&kept).unwrap(), odd);
    assert_eq!(CommuneRecord::decode(&CommuneRecord::default().encode()).unwrap().reports.len(), 0);
}

#[test]
fn a_commune_record_listing_writes_reads_back_whole_in_either_form() {
    let mut record = commune_record();
    let ids: Vec<SubmissionId> = record.reports.keys().copied().collect();
    record.writes = vec![(12, vec![ids[1]]), (40, ids.clone())];
    let bytes = record.encode();
    assert_eq!(bytes[0], 2, "compact, with writes");
    assert_eq!(CommuneRecord::decode(&bytes).unwrap(), record);
    let plain = CommuneRecord { writes: Vec::new(), ..record.clone() }.encode();
    assert!(
        bytes.len() <= plain.len() + 8,
        "each write a few bytes: {}",
        bytes.len() - plain.len()
    );
    // Whole, with writes: a review the compact form cannot say, or a write
    // naming a report the record does not hold.
    let mut odd = record.clone();
    odd.reports.values_mut().next().unwrap().header.review.village_id = "elsewhere".into();
    assert_eq!(odd.encode()[0], 3);
    assert_eq!(CommuneRecord::decode(&odd.encode()).unwrap(), odd);
    let mut stray = record.clone();
    stray.writes.push((41, vec![SubmissionId::of("ht.vq.hm.thon-9", "2022".parse().unwrap())]));
    assert_eq!(stray.encode()[0], 3);
    assert_eq!(CommuneRecord::decode(&stray.encode()).unwrap(), stray);
}

#[test]
fn a_history_record_keeps_each_report_and_stamper_once_and_reads_back_whole() {
    let record = commune_record();
    let revisions: Vec<Revision> = record
        .reports
        .iter()
        .flat_map(|(sub, report)| {
            report.fields.iter().map(|(field, held)| Revision {
                sub: *sub,
                field: field.clone(),
                held: held.clone(),
            })
        })
        .collect();
    assert_eq!(revisions.len(), 4);
    let bytes = encode_history(&revisions);
    assert_eq!(bytes[0], 1, "the compact version");
    assert_eq!(decode_history(&bytes).unwrap(), revisions);
    // The earlier form still reads, and is longer.
    #[derive(serde::Serialize)]
    enum Whole<'a> {
        V1(&'a [Revision]),
    }
    let whole = super::encode(&Whole::V1(&revisions));
    assert_eq!(decode_history(&whole).unwrap(), revisions);
    assert!(bytes.len() < whole.len(), "{} against {} bytes", bytes.len(), whole.len());
    assert!(decode_history(&encode_history(&[])).unwrap().is_empty());
}
