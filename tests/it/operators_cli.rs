//! Conflicts of interest through the CLI: `operators exclude` warns when the plan in force
//! still gives the operator members of that unit, `operators list` shows them per operator and
//! per unit with each operator's pending contacts, and `operators include` removes one
//! (audited); the console's exclusions page runs the same engine functions.

use crate::common;

use common::{Sheping, add_user, round_with_units};

const EDU: &str = "汉滨区教育体育局";

fn setup() -> Sheping {
    let sp = Sheping::new();
    round_with_units(&sp);
    let mut csv = String::from("参评单位,姓名,联系电话,代表类别\n");
    for (u, unit) in [EDU, "汉滨区住房和城乡建设局", "汉滨区公路管理段"]
        .iter()
        .enumerate()
    {
        for k in 0..4 {
            csv.push_str(&format!("{unit},代表{u}{k},1390{u}{k:06},\n"));
        }
    }
    let file = sp.write("roster.csv", csv.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
    add_user(&sp, "op1", "operator");
    add_user(&sp, "op2", "operator");
    add_user(&sp, "stat", "statistician");
    sp
}

#[test]
fn exclusions_are_listed_warned_about_and_removed() {
    let sp = setup();
    sp.ok(&["calls", "generate", "--round", "2022", "--seed", "3"]);
    let held = sp.count(&format!(
        "SELECT COUNT(*) FROM assignments s JOIN users u ON u.id = s.operator_id JOIN members m ON m.id = s.member_id JOIN units n ON n.id = m.unit_id WHERE u.login = 'op1' AND n.name = '{EDU}'"
    ));
    assert_eq!(
        held, 2,
        "the plan shares the unit's four between two operators"
    );
    let out = sp.ok(&[
        "operators",
        "exclude",
        "op1",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    assert!(out.contains("已记录回避"), "{out}");
    assert!(
        out.contains(&format!("话务员 op1 还有“{EDU}”的 2 名待拨代表")),
        "{out}"
    );
    let listed = sp.json(&["operators", "list", "--round", "2022", "--json"]);
    assert_eq!(listed["by_operator"]["op1"][0], EDU);
    assert_eq!(listed["by_unit"][EDU][0], "op1");
    assert_eq!(listed["pending_per_operator"]["op1"], 6);
    assert_eq!(listed["conflicts"][0]["pending"], 2);
    // Only operators can be excluded.
    let out = sp.run(&[
        "operators",
        "exclude",
        "stat",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("不是话务员"));

    let out = sp.ok(&[
        "operators",
        "include",
        "op1",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    assert!(out.contains("已取消回避"), "{out}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'operator.include'"),
        1
    );
    // Removing what is not there changes nothing and logs nothing.
    let out = sp.ok(&[
        "operators",
        "include",
        "op1",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    assert!(out.contains("本无回避记录"), "{out}");
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'operator.include'"),
        1
    );
    let text = sp.ok(&["operators", "list", "--round", "2022"]);
    assert!(text.contains("本轮没有回避记录"), "{text}");
}

#[test]
fn a_locked_round_refuses_exclusion_changes() {
    let sp = setup();
    sp.ok(&[
        "operators",
        "exclude",
        "op1",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    sp.ok(&["round", "lock", "2022"]);
    let out = sp.run(&[
        "operators",
        "include",
        "op1",
        "--round",
        "2022",
        "--unit",
        EDU,
    ]);
    assert!(!out.status.success());
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 1);
}
