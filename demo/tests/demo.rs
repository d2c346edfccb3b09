//! The demo rebuilds the 2022 province report from simulated field records:
//! its totals must equal the report's, and percent of plan is computed.

use fieldsync_demo::{run, PLAN_2022, REPORT_2022};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_rebuilds_the_2022_report() {
    let summary = run(|_| {}).await.expect("demo runs");
    assert_eq!(summary.villages, 108);
    assert!(summary.conflicts_settled > 0, "the demo settles conflicts");
    for (code, done) in REPORT_2022 {
        let (_, got, plan) =
            summary.province.iter().find(|(c, _, _)| c == code).expect("every indicator reported");
        assert_eq!(got, done, "{code}");
        let want_plan = PLAN_2022.iter().find(|(c, _)| c == code).map_or("", |(_, p)| p);
        assert_eq!(plan, want_plan, "{code} plan");
    }
    assert!(summary.report.contains("440/458 km (đạt 96,1% KH)"), "{}", summary.report);
    assert!(summary.report.contains("61,5/79,8 km (đạt 77,1% KH)"), "{}", summary.report);
    assert!(summary.report.contains("57,76/69,37 km (đạt 83,3% KH)"), "{}", summary.report);
    assert!(summary.report.contains("Khu dân cư kiểu mẫu đạt chuẩn: 147/100 (đạt 147,0% KH)"));
    assert!(summary.report.contains("Kênh mương nội đồng: 102,73 km"));

    // Footnote 2's land consolidated, district by district, exactly.
    let mut land: Vec<(String, String)> = fieldsync::demo::LAND_2022
        .iter()
        .map(|(d, ha)| (format!("ha-tinh.{d}"), ha.to_string()))
        .collect();
    land.sort();
    let mut got = summary.land_by_district.clone();
    got.sort();
    assert_eq!(got, land);
    assert!(summary
        .report
        .contains("Huyện Can Lộc — Diện tích dồn điền, đổi thửa, tích tụ ruộng đất: 3.428,6 ha"));

    // After 1 July 2025: 2026 under the new commune, and 2022 restated on it
    // (the demo checks that against its old communes' reports).
    assert_eq!(summary.new_commune_road_km, ("9".to_owned(), "63.36".to_owned()));
    assert!(
        summary.report.contains(
            "2022, tính lại theo xã mới: Đường giao thông nông thôn xây dựng, nâng cấp: 63,36 km"
        ),
        "{}",
        summary.report
    );
}
