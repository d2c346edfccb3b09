//! The built-in demo: the indicators of Hà Tĩnh's 2022 New Rural Development
//! report and an org tree of its 13 district-level units, a few communes each
//! and a few villages per commune. Loaded into an empty store so a newcomer can
//! sync at once.

use crate::amount::Amount;
use crate::model::{Catalogue, Indicator, Level, OrgUnit, ValueKind};

/// The province id.
pub const PROVINCE: &str = "ha-tinh";
/// A village for examples and tests: Thôn 1, Phúc Đồng, Hương Khê.
pub const SAMPLE_VILLAGE: &str = "ha-tinh.huong-khe.phuc-dong.thon-1";
/// A commune for examples and tests.
pub const SAMPLE_COMMUNE: &str = "ha-tinh.huong-khe.phuc-dong";

/// Villages per demo commune.
const VILLAGES_PER_COMMUNE: usize = 3;

/// (slug, name) of a district-level unit, with (slug, name) of its communes.
type District = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// (code, Vietnamese, English, unit, kind, parent, max per village).
type IndicatorRow =
    (&'static str, &'static str, &'static str, &'static str, ValueKind, Option<&'static str>, i64);

const DISTRICTS: &[District] = &[
    (
        "tp-ha-tinh",
        "Thành phố Hà Tĩnh",
        &[("thach-ha", "Thạch Hạ"), ("dong-mon", "Đồng Môn"), ("thach-hung", "Thạch Hưng")],
    ),
    ("hong-linh", "Thị xã Hồng Lĩnh", &[("thuan-loc", "Thuận Lộc"), ("dau-lieu", "Đậu Liêu")]),
    ("ky-anh-tx", "Thị xã Kỳ Anh", &[("ky-hoa", "Kỳ Hoa"), ("ky-ninh", "Kỳ Ninh")]),
    ("cam-xuyen", "Huyện Cẩm Xuyên", &[("cam-binh", "Cẩm Bình"), ("cam-vinh", "Cẩm Vịnh")]),
    (
        "can-loc",
        "Huyện Can Lộc",
        &[("gia-hanh", "Gia Hanh"), ("thien-loc", "Thiên Lộc"), ("tung-loc", "Tùng Lộc")],
    ),
    (
        "duc-tho",
        "Huyện Đức Thọ",
        &[("thanh-binh-thinh", "Thanh Bình Thịnh"), ("tung-chau", "Tùng Châu")],
    ),
    (
        "huong-khe",
        "Huyện Hương Khê",
        &[
            ("phuc-dong", "Phúc Đồng"),
            ("hoa-hai", "Hòa Hải"),
            ("huong-binh", "Hương Bình"),
            ("huong-thuy", "Hương Thủy"),
            ("phu-gia", "Phú Gia"),
            ("phuc-trach", "Phúc Trạch"),
            ("huong-trach", "Hương Trạch"),
            ("ha-linh", "Hà Linh"),
            ("dien-my", "Điền Mỹ"),
            ("huong-lien", "Hương Liên"),
        ],
    ),
    ("huong-son", "Huyện Hương Sơn", &[("son-tay", "Sơn Tây"), ("son-kim-1", "Sơn Kim 1")]),
    ("ky-anh", "Huyện Kỳ Anh", &[("ky-chau", "Kỳ Châu"), ("ky-giang", "Kỳ Giang")]),
    ("loc-ha", "Huyện Lộc Hà", &[("thach-kim", "Thạch Kim"), ("ho-do", "Hộ Độ")]),
    ("nghi-xuan", "Huyện Nghi Xuân", &[("xuan-thanh", "Xuân Thành"), ("xuan-hoi", "Xuân Hội")]),
    (
        "thach-ha",
        "Huyện Thạch Hà",
        &[("luu-vinh-son", "Lưu Vĩnh Sơn"), ("tan-lam-huong", "Tân Lâm Hương")],
    ),
    ("vu-quang", "Huyện Vũ Quang", &[("duc-linh", "Đức Lĩnh"), ("huong-minh", "Hương Minh")]),
];

/// The district-level units' land consolidated to the end of 2022 (the
/// report's footnote 2, ha), by district slug.
pub const LAND_2022: &[(&str, &str)] = &[
    ("can-loc", "3428.6"),
    ("cam-xuyen", "2183.4"),
    ("thach-ha", "2132.3"),
    ("loc-ha", "538.5"),
    ("ky-anh", "430.4"),
    ("duc-tho", "723"),
    ("tp-ha-tinh", "82"),
    ("hong-linh", "52"),
];

/// The indicators of the report's infrastructure section, and the land
/// consolidated (its agriculture section).
pub fn indicators() -> Vec<Indicator> {
    let km = ValueKind::Decimal { scale: 2 };
    let count = ValueKind::Integer;
    let rows: [IndicatorRow; 13] = [
        (
            "road_km",
            "Đường giao thông nông thôn xây dựng, nâng cấp",
            "Rural roads built or upgraded",
            "km",
            km,
            None,
            200,
        ),
        (
            "road_cement_km",
            "Trong đó: theo cơ chế hỗ trợ xi măng",
            "of which under the cement-support mechanism",
            "km",
            km,
            Some("road_km"),
            200,
        ),
        ("drainage_km", "Rãnh thoát nước", "Drainage ditches", "km", km, None, 200),
        ("canal_km", "Kênh mương nội đồng", "In-field canals", "km", km, None, 200),
        (
            "canal_cement_km",
            "Trong đó: kênh mương theo cơ chế hỗ trợ xi măng",
            "of which canals under the cement-support mechanism",
            "km",
            km,
            Some("canal_km"),
            200,
        ),
        (
            "commune_cultural_house",
            "Nhà văn hóa xã",
            "Commune cultural houses, new or upgraded",
            "count",
            count,
            None,
            5,
        ),
        ("commune_sports_area", "Khu thể thao xã", "Commune sports areas", "count", count, None, 5),
        (
            "village_cultural_house",
            "Nhà văn hóa thôn",
            "Village cultural houses",
            "count",
            count,
            None,
            10,
        ),
        (
            "village_sports_area",
            "Khu thể thao thôn",
            "Village sports areas",
            "count",
            count,
            None,
            10,
        ),
        (
            "playground",
            "Khu vui chơi giải trí người già và trẻ em",
            "Playgrounds for the elderly and children",
            "count",
            count,
            None,
            20,
        ),
        (
            "smart_house_library",
            "Nhà văn hóa cộng đồng gắn ngôi nhà trí tuệ",
            "Community houses with a smart-house library in use",
            "count",
            count,
            None,
            10,
        ),
        (
            "model_residential_area",
            "Khu dân cư kiểu mẫu đạt chuẩn",
            "Model residential areas certified",
            "count",
            count,
            None,
            10,
        ),
        (
            "land_consolidation_ha",
            "Diện tích dồn điền, đổi thửa, tích tụ ruộng đất",
            "Land consolidated (plots merged, exchanged, pooled)",
            "ha",
            ValueKind::Decimal { scale: 2 },
            None,
            2_000,
        ),
    ];
    rows.into_iter()
        .map(|(code, vi, en, unit, kind, parent, max)| Indicator {
            code: code.into(),
            name_vi: vi.into(),
            name_en: en.into(),
            unit: unit.into(),
            kind,
            parent: parent.map(Into::into),
            max_per_village: Amount::whole(max),
        })
        .collect()
}

/// Hà Tĩnh, its 13 district-level units, their demo communes, and "Thôn 1..3"
/// in each commune.
pub fn org_units() -> Vec<OrgUnit> {
    let mut units = vec![OrgUnit {
        id: PROVINCE.into(),
        name: "Tỉnh Hà Tĩnh".into(),
        level: Level::Province,
        parent: None,
    }];
    for (d_slug, d_name, communes) in DISTRICTS {
        let district = format!("{PROVINCE}.{d_slug}");
        units.push(OrgUnit {
            id: district.clone(),
            name: (*d_name).into(),
            level: Level::District,
            parent: Some(PROVINCE.into()),
        });
        for (c_slug, c_name) in *communes {
            let commune = format!("{district}.{c_slug}");
            units.push(OrgUnit {
                id: commune.clone(),
                name: format!("Xã {c_name}"),
                level: Level::Commune,
                parent: Some(district.clone()),
            });
            for n in 1..=VILLAGES_PER_COMMUNE {
                units.push(OrgUnit {
                    id: format!("{commune}.thon-{n}"),
                    name: format!("Thôn {n}"),
                    level: Level::Village,
                    parent: Some(commune.clone()),
                });
            }
        }
    }
    units
}

/// The whole demo catalogue.
pub fn catalogue() -> Catalogue {
    Catalogue::new(indicators(), org_units()).expect("the built-in demo catalogue is consistent")
}

/// A synthetic country at national scale, for benchmarks: `provinces` ×
/// `districts` × `communes` × `villages` org units with ids like
/// `p3.d1.c7.v2`, and the demo indicators. (63 × 11 × 13 × 8 is about
/// Vietnam's size: 72,072 villages.)
pub fn country(provinces: usize, districts: usize, communes: usize, villages: usize) -> Catalogue {
    let mut units = Vec::new();
    let unit = |id: String, level, parent: Option<String>| OrgUnit {
        name: format!("Đơn vị {id}"),
        id,
        level,
        parent,
    };
    for p in 0..provinces {
        let pid = format!("p{p}");
        units.push(unit(pid.clone(), Level::Province, None));
        for d in 0..districts {
            let did = format!("{pid}.d{d}");
            units.push(unit(did.clone(), Level::District, Some(pid.clone())));
            for c in 0..communes {
                let cid = format!("{did}.c{c}");
                units.push(unit(cid.clone(), Level::Commune, Some(did.clone())));
                for v in 0..villages {
                    units.push(unit(format!("{cid}.v{v}"), Level::Village, Some(cid.clone())));
                }
            }
        }
    }
    Catalogue::new(indicators(), units).expect("a consistent synthetic country")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_has_thirteen_districts_and_its_samples() {
        let cat = catalogue();
        let districts = cat.org_units.values().filter(|u| u.level == Level::District).count();
        assert_eq!(districts, 13);
        assert!(cat.village(SAMPLE_VILLAGE).is_ok());
        assert_eq!(cat.org_unit(SAMPLE_COMMUNE).unwrap().name, "Xã Phúc Đồng");
        assert_eq!(cat.parts_of("road_km").count(), 1);
    }
}
